//! The gateway's decision memo seen from outside (issue 15): over HTTP, a
//! policy that reads more of the request than the default gets answers that
//! follow every field it reads, whatever the memo holds, and `/health` counts
//! the memo's lookups and hits. Each test starts its own in-process gateway on
//! `127.0.0.1:0`.

use crate::a2a_http;

use a2a_http::{post, send_raw, Outcome, RawResponse};
use serde_json::{json, Value};
use xtask::a2a::{Gateway, GatewayOptions, PolicySource};

fn gateway(policy: PolicySource) -> Gateway {
    Gateway::start(GatewayOptions {
        policy,
        ..GatewayOptions::default()
    })
    .expect("the gateway starts")
}

fn answer(gw: &Gateway, raw: &[u8]) -> RawResponse {
    match send_raw(gw.addr(), raw) {
        Outcome::Response(r) => r,
        Outcome::Closed => panic!("the gateway closed the connection without answering"),
    }
}

fn perform(gw: &Gateway, body: &Value) -> RawResponse {
    answer(
        gw,
        &post("/a2a/perform", &serde_json::to_vec(body).unwrap()),
    )
}

fn memo(gw: &Gateway) -> Value {
    let raw = format!(
        "GET /health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        gw.addr()
    );
    answer(gw, raw.as_bytes()).json()["memo"].clone()
}

fn request(tenant: &str, goal: &str, ticket: u32) -> Value {
    json!({"tenantId": tenant, "purpose": "audit", "residency": "US", "pqid": "pq.getCaseById",
           "agent": "triage-bot", "task": {"goal": goal, "ticket": ticket}})
}

#[test]
fn a2a_memo_follows_every_field_a_custom_policy_reads() {
    let rego = r#"package a2a
default goal := "-"
goal := input.task.goal
decision := {"allow": goal != "drop tables", "reasons": [sprintf("goal %v", [goal])]}
"#;
    let gw = gateway(PolicySource::Text {
        name: "goal.rego".into(),
        rego: rego.into(),
    });
    for _round in 0..3 {
        for (i, goal) in ["fix the test", "drop tables", "summarise"]
            .iter()
            .enumerate()
        {
            // The same task each round: the policy reads `task`, so a new
            // ticket number would be a new key.
            let resp = perform(&gw, &request("TENANT_001", goal, i as u32));
            let want_allow = *goal != "drop tables";
            assert_eq!(resp.status, if want_allow { 200 } else { 403 }, "{goal}");
            let policy = &resp.json()["result"]["policy"];
            assert_eq!(policy["allow"], want_allow, "{goal}");
            assert_eq!(policy["reasons"], json!([format!("goal {goal}")]));
        }
    }
    let m = memo(&gw);
    assert_eq!(m["enabled"], true, "{m}");
    // A new ticket in the same goal is a new task: evaluated, not recalled.
    perform(&gw, &request("TENANT_001", "summarise", 99));
    let m2 = memo(&gw);
    assert_eq!(m2["hits"], m["hits"], "{m2}");
    // Nine requests, three distinct tasks: three misses, six hits.
    assert_eq!(
        (m["lookups"].as_u64(), m["hits"].as_u64()),
        (Some(9), Some(6)),
        "{m}"
    );
}

#[test]
fn a2a_default_policy_memo_ignores_what_it_does_not_read() {
    let gw = gateway(PolicySource::Default);
    for ticket in 0..5 {
        let resp = perform(&gw, &request("TENANT_001", "anything", ticket));
        assert_eq!(resp.status, 200);
        let resp = perform(&gw, &request("TENANT_009", "anything", ticket));
        assert_eq!(resp.status, 403);
        assert_eq!(
            resp.json()["result"]["policy"]["reasons"],
            json!(["tenant TENANT_009 is not known to the gateway"])
        );
    }
    let m = memo(&gw);
    // Ten distinct requests, two distinct values of the four fields read.
    assert_eq!(
        (m["lookups"].as_u64(), m["hits"].as_u64()),
        (Some(10), Some(8)),
        "{m}"
    );
}

#[test]
fn a2a_nondeterministic_policy_is_not_memoised() {
    let rego = "package a2a\ndecision := {\"allow\": rand.intn(\"x\", 2) == 0, \"reasons\": []}\n";
    let gw = gateway(PolicySource::Text {
        name: "coin.rego".into(),
        rego: rego.into(),
    });
    let statuses: Vec<u16> = (0..60)
        .map(|_| perform(&gw, &request("TENANT_001", "same", 1)).status)
        .collect();
    assert!(
        statuses.contains(&200) && statuses.contains(&403),
        "{statuses:?}"
    );
    let m = memo(&gw);
    assert_eq!(m, json!({"enabled": false, "lookups": 0, "hits": 0}));
}
