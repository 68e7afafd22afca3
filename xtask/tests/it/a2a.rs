//! The A2A gateway, its policy and its probe (issue 4): every test starts its
//! own in-process gateway on `127.0.0.1:0`, and every load is bounded in count
//! and in time.

use crate::a2a_http;
use crate::common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use a2a_http::{good_request, post, seed_body, send_raw, Outcome, RawResponse};
use common::{assert_one_line_error, run, stderr, stdout, temp_project, xtask};
use serde_json::{json, Value};
use xtask::a2a::{self, Gateway, GatewayOptions, PolicySource};

fn gateway() -> Gateway {
    Gateway::start(GatewayOptions::default()).expect("the gateway starts")
}

fn response(outcome: Outcome) -> RawResponse {
    match outcome {
        Outcome::Response(r) => r,
        Outcome::Closed => panic!("the gateway closed the connection without answering"),
    }
}

fn perform(gw: &Gateway, body: &Value) -> RawResponse {
    response(send_raw(
        gw.addr(),
        &post("/a2a/perform", &serde_json::to_vec(body).unwrap()),
    ))
}

#[test]
fn a2a_quickstart_step5_answers_the_seed_shape() {
    let gw = gateway();
    let resp = good_request(gw.addr());
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("application/json")
    );
    let mut body = resp.json();
    let result = body["result"].clone();
    assert_eq!(body["provenance"]["hash"], a2a::provenance_hash(&result));
    assert!(body["provenance"]["time"].is_u64());
    body["provenance"]["time"] = json!("[time]");
    common::insta_settings().bind(|| insta::assert_json_snapshot!("a2a_quickstart_step5", body));
}

#[test]
fn a2a_policy_allows_the_seed_request() {
    let gw = gateway();
    let resp = perform(&gw, &a2a::seed_request());
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["result"]["policy"]["allow"], true);
}

#[test]
fn a2a_policy_denies_a_residency_the_tenant_may_not_use() {
    let gw = gateway();
    let mut req = a2a::seed_request();
    req["residency"] = json!("EU");
    let resp = perform(&gw, &req);
    assert_eq!(resp.status, 403);
    let body = resp.json();
    assert_eq!(body["ok"], false);
    assert_eq!(body["result"]["policy"]["allow"], false);
    assert_eq!(
        body["result"]["policy"]["reasons"],
        json!(["residency EU is not allowed for tenant TENANT_001"])
    );
    assert_eq!(
        body["provenance"]["hash"],
        a2a::provenance_hash(&body["result"])
    );
    assert!(body["error"]
        .as_str()
        .unwrap()
        .starts_with("denied by policy: "));
}

#[test]
fn a2a_policy_denies_a_pqid_off_the_allowlist() {
    let gw = gateway();
    let mut req = a2a::seed_request();
    req["pqid"] = json!("pq.dropAllTables");
    let resp = perform(&gw, &req);
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.json()["result"]["policy"]["reasons"],
        json!(["pqid pq.dropAllTables is not on the persisted-query allowlist (persisted_only)"])
    );
}

#[test]
fn a2a_policy_denies_an_unknown_tenant_and_purpose() {
    let gw = gateway();
    let mut req = a2a::seed_request();
    req["tenantId"] = json!("TENANT_999");
    req["purpose"] = json!("curiosity");
    let resp = perform(&gw, &req);
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.json()["result"]["policy"]["reasons"],
        json!([
            "purpose curiosity is not allowed",
            "tenant TENANT_999 is not known to the gateway"
        ])
    );
}

#[test]
fn a2a_policy_option_selects_another_policy() {
    let rego =
        "package a2a\n\ndecision := {\"allow\": false, \"reasons\": [\"frozen for release\"]}\n";
    let gw = Gateway::start(GatewayOptions {
        policy: PolicySource::Text {
            name: "freeze.rego".into(),
            rego: rego.into(),
        },
        ..GatewayOptions::default()
    })
    .unwrap();
    let resp = perform(&gw, &a2a::seed_request());
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.json()["result"]["policy"]["reasons"],
        json!(["frozen for release"])
    );

    let err = Gateway::start(GatewayOptions {
        policy: PolicySource::File("/nonexistent/policy.rego".into()),
        ..GatewayOptions::default()
    })
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("cannot read policy /nonexistent/policy.rego"),
        "{err:#}"
    );
}

#[test]
fn a2a_bad_requests_get_json_errors_and_the_server_keeps_serving() {
    let gw = Gateway::start(GatewayOptions {
        max_body: 4096,
        ..GatewayOptions::default()
    })
    .unwrap();
    let addr = gw.addr();
    let big = vec![b' '; 5000];
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unknown path", post("/a2a/unknown", &seed_body()), 404),
        (
            "wrong method",
            b"GET /a2a/perform HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            405,
        ),
        ("malformed JSON", post("/a2a/perform", b"{\"tenantId\": "), 400),
        ("not an object", post("/a2a/perform", b"[1,2,3]"), 400),
        ("missing fields", post("/a2a/perform", br#"{"tenantId":"TENANT_001"}"#), 400),
        (
            "mistyped field",
            post("/a2a/perform", br#"{"tenantId":"T","purpose":"p","residency":"US","pqid":7,"agent":"a","task":{}}"#),
            400,
        ),
        ("invalid UTF-8", post("/a2a/perform", b"{\"tenantId\":\"\xff\xfe\"}"), 400),
        ("body over the limit", post("/a2a/perform", &big), 413),
    ];
    for (name, bytes, want) in cases {
        let resp = response(send_raw(addr, &bytes));
        assert_eq!(
            resp.status,
            want,
            "{name}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        let body = resp.json();
        assert_eq!(body["ok"], false, "{name}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{name}: {body}"
        );
        if want == 405 {
            assert_eq!(resp.header("allow").as_deref(), Some("POST"), "{name}");
        }
        good_request(addr);
    }
}

#[test]
fn a2a_missing_fields_are_named() {
    let gw = gateway();
    let resp = perform(
        &gw,
        &json!({"tenantId": "TENANT_001", "task": "not an object"}),
    );
    assert_eq!(resp.status, 400);
    let error = resp.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.starts_with("missing or mistyped fields: purpose, residency, pqid, agent, task"),
        "{error}"
    );
}

#[test]
fn a2a_opa_data_api_answers_for_the_loaded_policy() {
    let gw = gateway();
    let input = json!({"input": a2a::seed_request()});
    let body = serde_json::to_vec(&input).unwrap();

    let resp = response(send_raw(gw.addr(), &post("/v1/data/a2a/allow", &body)));
    assert_eq!(resp.status, 200);
    let answer = resp.json();
    assert_eq!(answer["result"], true);
    assert!(answer["decision_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));

    let resp = response(send_raw(gw.addr(), &post("/v1/data/a2a/decision", &body)));
    assert_eq!(resp.json()["result"]["allow"], true);

    let mut denied = input.clone();
    denied["input"]["residency"] = json!("EU");
    let resp = response(send_raw(
        gw.addr(),
        &post("/v1/data/a2a/deny", &serde_json::to_vec(&denied).unwrap()),
    ));
    assert_eq!(
        resp.json()["result"],
        json!(["residency EU is not allowed for tenant TENANT_001"])
    );

    // An undefined document answers without `result`, as OPA does.
    let resp = response(send_raw(
        gw.addr(),
        &post("/v1/data/a2a/nothing_here", &body),
    ));
    assert_eq!(resp.status, 200);
    let answer = resp.json();
    assert!(answer.get("result").is_none(), "{answer}");
    assert!(answer["decision_id"].is_string());

    let resp = response(send_raw(
        gw.addr(),
        &post("/v1/data/a2a/not-an-ident", &body),
    ));
    assert_eq!(resp.status, 400);
    let resp = response(send_raw(
        gw.addr(),
        b"GET /v1/data/a2a/allow HTTP/1.1\r\nHost: x\r\n\r\n",
    ));
    assert_eq!(resp.status, 405);
}

#[test]
fn a2a_bounded_concurrent_load_has_no_errors() {
    let gw = gateway();
    let started = Instant::now();
    let result = a2a::load(&gw.url(), 400, 8, Duration::from_secs(30)).unwrap();
    assert_eq!(result.requests, 400, "{result:?}");
    assert_eq!(result.errors, 0, "{result:?}");
    assert_eq!(result.availability, 100.0);
    assert!(
        result.p50_ms <= result.p95_ms && result.p95_ms <= result.p99_ms,
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a2a_load_stops_at_its_time_bound() {
    let gw = gateway();
    let started = Instant::now();
    let result = a2a::load(&gw.url(), u64::MAX, 2, Duration::from_millis(300)).unwrap();
    // Endless without its bound; 5 s is over ten times the bound, so a loaded
    // machine does not fail the test.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(result.requests > 0 && result.errors == 0, "{result:?}");
}

#[test]
fn a2a_probe_checks_shape_hash_and_policy() {
    let gw = gateway();
    let probed = a2a::probe(&gw.url()).unwrap();
    assert!(probed.example.allow);
    assert_eq!(probed.example.status, 200);
    assert!(probed.policy.residency_pass && probed.policy.persisted_only);
    let j = probed.to_json();
    assert_eq!(
        j["policy"],
        json!({"residency_pass": true, "persisted_only": true})
    );
}

#[test]
fn a2a_decision_log_has_one_line_per_decision() {
    let (_dir, log, gw) = a2a_http::logged_gateway("logs/decisions.jsonl");
    a2a::probe(&gw.url()).unwrap();
    gw.shutdown().unwrap();
    let lines = a2a_http::log_lines(&log);
    // Three `/a2a/perform` requests, then the A2A 1.0 allowed and denied SendMessage.
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["allow"], true);
    assert_eq!(lines[1]["allow"], false);
    assert_eq!(lines[1]["input"]["residency"], "EU");
    for (i, line) in lines.iter().enumerate() {
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        if i < 3 {
            assert_eq!(keys, ["id", "time", "path", "input", "allow", "reasons"]);
        } else {
            assert_eq!(line["path"], "/a2a/v1");
            assert_eq!(
                keys,
                ["id", "time", "path", "input", "method", "taskId", "allow", "reasons"]
            );
        }
    }
    assert_eq!(lines[3]["allow"], true);
    assert_eq!(lines[4]["allow"], false);
}

/// A fake gateway that answers every request with `body` (status 200), for at
/// most `secs` seconds.
fn fake_gateway(body: String, secs: u64) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            let Ok((mut s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = [0u8; 8192];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn a2a_probe_fails_on_a_wrong_hash() {
    let result = json!({"echoTask": a2a::seed_request()["task"], "policy": {"allow": true, "reasons": ["dev stub"]}});
    let body =
        json!({"ok": true, "result": result, "provenance": {"hash": "0".repeat(64), "time": 1}});
    let url = fake_gateway(body.to_string(), 10);
    let err = a2a::probe(&url).unwrap_err();
    assert!(
        format!("{err:#}").contains("wrong provenance hash"),
        "{err:#}"
    );

    let project = temp_project();
    let out = run(xtask(project.path()).args(["a2a", "probe", "--url", &url]));
    assert_one_line_error(&out, "xtask", 1, "wrong provenance hash");
}

#[test]
fn a2a_probe_fails_on_a_wrong_shape() {
    let url = fake_gateway(
        r#"{"ok": true, "result": {"echoTask": {}}}"#.to_string(),
        10,
    );
    let err = a2a::probe(&url).unwrap_err();
    assert!(
        format!("{err:#}").contains("wrong shape: `result.echoTask` is not the task sent"),
        "{err:#}"
    );
}

#[test]
fn a2a_probe_cli_bad_url_and_refused_connection_are_one_line_errors() {
    let project = temp_project();
    // A port that was free a moment ago: nothing listens there.
    let port = common::free_port();
    for url in [
        "not-a-url".to_string(),
        "https://example.invalid".to_string(),
        format!("http://127.0.0.1:{port}"),
    ] {
        let out = run(xtask(project.path()).args(["a2a", "probe", "--url", &url]));
        assert_one_line_error(&out, "xtask", 1, "");
    }
}

#[test]
fn a2a_probe_cli_uses_an_in_process_gateway_and_writes_out() {
    let project = temp_project();
    let out = run(xtask(project.path()).args(["a2a", "probe", "--out", "out/a2a-probe.json"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let written: Value = serde_json::from_str(
        &std::fs::read_to_string(project.path().join("out/a2a-probe.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(printed, written);
    assert_eq!(
        written["policy"],
        json!({"residency_pass": true, "persisted_only": true})
    );
    assert_eq!(written["example"]["allow"], true);
}

#[test]
fn a2a_probe_cli_load_writes_a_measured_slo_snapshot() {
    let project = temp_project();
    let out = run(xtask(project.path()).args([
        "a2a",
        "probe",
        "--requests",
        "60",
        "--concurrency",
        "3",
        "--max-seconds",
        "20",
        "--out",
        "out/slo-a2a.json",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let snap: Value = serde_json::from_str(
        &std::fs::read_to_string(project.path().join("out/slo-a2a.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(snap["source"], "measured");
    assert_eq!(snap["capturedAt"], "2023-11-14T22:13:20Z");
    assert_eq!(snap["version"], "v0.3.2-mc");
    assert_eq!(snap["requests"], 60);
    assert_eq!(snap["errors"], 0);
    assert_eq!(snap["availability"], 100.0);
    assert_eq!(
        snap["policy"],
        json!({"residency_pass": true, "persisted_only": true})
    );
    let endpoints: Vec<&str> = snap["endpoints"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        endpoints,
        [
            "A2A.perform.p50_ms",
            "A2A.perform.p95_ms",
            "A2A.perform.p99_ms"
        ]
    );
    assert!(snap["endpoints"]["A2A.perform.p99_ms"].as_f64().unwrap() > 0.0);
}

#[cfg(unix)]
#[test]
fn a2a_serve_cli_stops_cleanly_on_ctrl_c() {
    use std::io::BufRead;
    use std::process::Stdio;

    let project = temp_project();
    let mut child = xtask(project.path())
        .args([
            "a2a",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--decision-log",
            "out/decisions.jsonl",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_string();
    let probed = a2a::probe(&url).unwrap();
    assert!(probed.example.allow);

    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop within 10 s of SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
    let log = std::fs::read_to_string(project.path().join("out/decisions.jsonl")).unwrap();
    // The probe's three `/a2a/perform` requests and two A2A 1.0 SendMessage.
    assert_eq!(log.lines().count(), 5);
}

#[test]
fn a2a_serve_cli_refuses_a_missing_policy_and_a_busy_address() {
    let project = temp_project();
    let out = run(xtask(project.path()).args([
        "a2a",
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--policy",
        "nope.rego",
    ]));
    let line = assert_one_line_error(&out, "xtask", 1, "nope.rego");
    assert!(line.starts_with("xtask: cannot read policy "), "{line}");

    let gw = gateway();
    let out = run(xtask(project.path()).args(["a2a", "serve", "--addr", &gw.addr().to_string()]));
    let line = assert_one_line_error(&out, "xtask", 1, "cannot listen on");
    assert!(
        line.starts_with(&format!("xtask: cannot listen on {}", gw.addr())),
        "{line}"
    );
}
