//! A2A 1.0 beside `/a2a/perform` (issue 13): the agent card, JSON-RPC with
//! every error code, hostile JSON-RPC, snapshots of the card and of a
//! completed and a rejected task, the probe, and the official Python SDK
//! (`a2a-sdk` 1.x) driving the gateway. Every gateway is in-process on
//! `127.0.0.1:0`.

use crate::a2a_http;
use crate::common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use a2a_http::{good_request, post, send_raw, Outcome, RawResponse};
use serde_json::{json, Value};
use xtask::a2a::v1::types::TaskState;
use xtask::a2a::{self, Gateway, GatewayOptions};

fn gateway() -> Gateway {
    Gateway::start(GatewayOptions::default()).expect("the gateway starts")
}

fn response(outcome: Outcome) -> RawResponse {
    match outcome {
        Outcome::Response(r) => r,
        Outcome::Closed => panic!("the gateway closed the connection without answering"),
    }
}

/// POSTs raw bytes to the JSON-RPC interface, with extra header lines.
fn rpc_raw(addr: SocketAddr, headers: &str, body: &[u8]) -> RawResponse {
    let mut req = format!(
        "POST /a2a/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    response(send_raw(addr, &req))
}

/// One JSON-RPC call; the whole response object.
fn rpc(addr: SocketAddr, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let r = rpc_raw(addr, "", body.to_string().as_bytes());
    assert_eq!(r.status, 200);
    r.json()
}

fn message(data: Value) -> Value {
    json!({"message": {"messageId": "m-1", "role": "ROLE_USER",
                       "parts": [{"data": data, "mediaType": "application/json"}]}})
}

fn denied_request() -> Value {
    let mut r = a2a::seed_request();
    r["residency"] = json!("EU");
    r
}

/// SendMessage of `data`: the task.
fn send(addr: SocketAddr, data: Value) -> Value {
    let answer = rpc(addr, "SendMessage", message(data));
    assert!(answer.get("error").is_none(), "{answer}");
    answer["result"]["task"].clone()
}

#[test]
fn a2a_v1_card_names_the_url_the_client_used() {
    let gw = gateway();
    let get = |host: &str| {
        let req = format!("GET /.well-known/agent-card.json HTTP/1.1\r\nHost: {host}\r\n\r\n");
        response(send_raw(gw.addr(), req.as_bytes()))
    };
    let r = get(&gw.addr().to_string());
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let card = r.json();
    assert_eq!(
        card["supportedInterfaces"][0]["url"],
        format!("{}/a2a/v1", gw.url())
    );
    // Behind a name (or `--addr 0.0.0.0:8080` reached by name), the card follows.
    let named = get("gateway.test:8080").json();
    assert_eq!(
        named["supportedInterfaces"][0]["url"],
        "http://gateway.test:8080/a2a/v1"
    );
    common::insta_settings().bind(|| {
        insta::assert_json_snapshot!("a2a_v1_agent_card", named);
    });
    // Only GET and HEAD.
    let post = response(send_raw(
        gw.addr(),
        &post("/.well-known/agent-card.json", b"{}"),
    ));
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow").as_deref(), Some("GET, HEAD"));
}

/// Replaces what changes from run to run: ids and times.
fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                match k.as_str() {
                    "id" | "contextId" | "taskId" | "messageId" | "artifactId" => {
                        *x = json!("[id]")
                    }
                    "timestamp" | "time" => *x = json!("[time]"),
                    _ => redact(x),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[test]
fn a2a_v1_send_message_completes_an_allowed_task_and_rejects_a_denied_one() {
    let gw = gateway();
    let addr = gw.addr();

    let completed = send(addr, a2a::seed_request());
    assert_eq!(completed["status"]["state"], "TASK_STATE_COMPLETED");
    let payload = &completed["artifacts"][0]["parts"][0]["data"];
    assert_eq!(payload["result"]["echoTask"], a2a::seed_request()["task"]);
    assert_eq!(payload["result"]["policy"]["allow"], true);
    assert_eq!(
        payload["provenance"]["hash"],
        a2a::provenance_hash(&payload["result"])
    );
    assert_eq!(completed["history"][0]["role"], "ROLE_USER");
    assert_eq!(completed["history"][0]["taskId"], completed["id"]);

    let rejected = send(addr, denied_request());
    assert_eq!(rejected["status"]["state"], "TASK_STATE_REJECTED");
    let why = &rejected["status"]["message"];
    assert_eq!(why["role"], "ROLE_AGENT");
    let text = why["parts"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("denied by policy: ") && text.contains("EU"),
        "{text}"
    );
    assert!(rejected.get("artifacts").is_none());

    let (mut c, mut r) = (completed.clone(), rejected.clone());
    redact(&mut c);
    redact(&mut r);
    common::insta_settings().bind(|| {
        insta::assert_json_snapshot!("a2a_v1_task_completed", c);
        insta::assert_json_snapshot!("a2a_v1_task_rejected", r);
    });

    // GetTask reads them back, honouring historyLength.
    let got = rpc(addr, "GetTask", json!({"id": completed["id"]}))["result"].clone();
    assert_eq!(got, completed);
    let none = rpc(
        addr,
        "GetTask",
        json!({"id": completed["id"], "historyLength": 0}),
    );
    assert!(none["result"].get("history").is_none(), "{none}");
    assert_eq!(none["result"]["artifacts"], completed["artifacts"]);

    // ListTasks: newest first, artifacts only on request, pages.
    let listed = rpc(addr, "ListTasks", json!({"pageSize": 1}))["result"].clone();
    assert_eq!(listed["tasks"][0]["id"], rejected["id"]);
    assert_eq!(listed["totalSize"], 2);
    assert_eq!(listed["pageSize"], 1);
    let next = listed["nextPageToken"].as_str().unwrap().to_string();
    assert!(!next.is_empty());
    let page2 = rpc(
        addr,
        "ListTasks",
        json!({"pageSize": 1, "pageToken": next, "includeArtifacts": true}),
    )["result"]
        .clone();
    assert_eq!(page2["tasks"][0]["id"], completed["id"]);
    assert_eq!(page2["tasks"][0]["artifacts"], completed["artifacts"]);
    assert_eq!(page2["nextPageToken"], "");
    let only_rejected = rpc(addr, "ListTasks", json!({"status": "TASK_STATE_REJECTED"}));
    assert_eq!(only_rejected["result"]["totalSize"], 1);
    assert!(only_rejected["result"]["tasks"][0]
        .get("artifacts")
        .is_none());
    let future = rpc(
        addr,
        "ListTasks",
        json!({"statusTimestampAfter": "2999-01-01T00:00:00Z"}),
    );
    assert_eq!(future["result"]["totalSize"], 0);

    // The seed's endpoint is unchanged beside it.
    good_request(addr);
}

#[test]
fn a2a_v1_decisions_go_to_the_decision_log() {
    let (_dir, log, gw) = a2a_http::logged_gateway("decisions.jsonl");
    let allowed = send(gw.addr(), a2a::seed_request());
    let denied = send(gw.addr(), denied_request());
    // Reading a task back is not a decision.
    rpc(gw.addr(), "GetTask", json!({"id": allowed["id"]}));
    gw.shutdown().unwrap();
    let lines = a2a_http::log_lines(&log);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["path"], "/a2a/v1");
    assert_eq!(lines[0]["method"], "SendMessage");
    assert_eq!(lines[0]["taskId"], allowed["id"]);
    assert_eq!(lines[0]["allow"], true);
    assert_eq!(lines[0]["input"]["tenantId"], "TENANT_001");
    assert_eq!(lines[1]["taskId"], denied["id"]);
    assert_eq!(lines[1]["allow"], false);
    assert!(lines[1]["reasons"][0].as_str().unwrap().contains("EU"));
}

/// What a JSON-RPC request must get: this error code, answered under this id.
struct Case {
    name: &'static str,
    headers: &'static str,
    body: Vec<u8>,
    code: i64,
    id: Value,
}

fn case(name: &'static str, body: impl Into<Vec<u8>>, code: i64, id: Value) -> Case {
    Case {
        name,
        headers: "",
        body: body.into(),
        code,
        id,
    }
}

fn call(method: &str, params: Value) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
        .to_string()
        .into_bytes()
}

/// Every error code, and JSON-RPC abuse: batches, huge ids, wrong versions,
/// deep nesting.
fn cases(finished_task: &str) -> Vec<Case> {
    let seven = json!(7);
    let null = Value::Null;
    let mut wrong_types = a2a::seed_request();
    wrong_types["tenantId"] = json!(42);
    let nested = {
        let depth = 100_000;
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    let push = json!({"message": message(a2a::seed_request())["message"],
                      "configuration": {"taskPushNotificationConfig": {"url": "http://127.0.0.1:1/hook"}}});
    let mut to_finished = message(a2a::seed_request());
    to_finished["message"]["taskId"] = json!(finished_task);
    let mut to_unknown = message(a2a::seed_request());
    to_unknown["message"]["taskId"] = json!("no-such-task");
    let mut from_agent = message(a2a::seed_request());
    from_agent["message"]["role"] = json!("ROLE_AGENT");
    let mut two_contents = message(a2a::seed_request());
    two_contents["message"]["parts"][0]["text"] = json!("and text");
    vec![
        // -32700
        case("not JSON", "{jsonrpc", -32700, null.clone()),
        case("empty body", "", -32700, null.clone()),
        case(
            "invalid UTF-8",
            b"{\"jsonrpc\":\"2.0\",\"id\":\"\xc3\x28\"}".to_vec(),
            -32700,
            null.clone(),
        ),
        case(
            "deeply nested params (100,000 levels)",
            nested,
            -32700,
            null.clone(),
        ),
        case(
            "trailing garbage",
            r#"{"jsonrpc":"2.0","id":1,"method":"GetTask"}}}"#,
            -32700,
            null.clone(),
        ),
        // -32600
        case(
            "a batch",
            format!(
                "[{}]",
                String::from_utf8(call("GetTask", json!({"id": "x"}))).unwrap()
            ),
            -32600,
            null.clone(),
        ),
        case("an empty batch", "[]", -32600, null.clone()),
        case("a string", r#""SendMessage""#, -32600, null.clone()),
        case("null", "null", -32600, null.clone()),
        case(
            "jsonrpc 1.0",
            r#"{"jsonrpc":"1.0","id":7,"method":"GetTask","params":{"id":"x"}}"#,
            -32600,
            seven.clone(),
        ),
        case(
            "jsonrpc as a number",
            r#"{"jsonrpc":2.0,"id":7,"method":"GetTask"}"#,
            -32600,
            seven.clone(),
        ),
        case(
            "no jsonrpc member",
            r#"{"id":7,"method":"GetTask"}"#,
            -32600,
            seven.clone(),
        ),
        case(
            "a notification (no id)",
            r#"{"jsonrpc":"2.0","method":"SendMessage","params":{}}"#,
            -32600,
            null.clone(),
        ),
        case(
            "an id beyond 64 bits",
            r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"GetTask"}"#,
            -32600,
            null.clone(),
        ),
        case(
            "an id of 1e400",
            r#"{"jsonrpc":"2.0","id":1e400,"method":"GetTask"}"#,
            -32700,
            null.clone(),
        ),
        case(
            "a fractional id",
            r#"{"jsonrpc":"2.0","id":1.5,"method":"GetTask"}"#,
            -32600,
            null.clone(),
        ),
        case(
            "a boolean id",
            r#"{"jsonrpc":"2.0","id":true,"method":"GetTask"}"#,
            -32600,
            null.clone(),
        ),
        case(
            "an object id",
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"GetTask"}"#,
            -32600,
            null.clone(),
        ),
        case(
            "a 100 KiB string id",
            format!(
                r#"{{"jsonrpc":"2.0","id":"{}","method":"GetTask"}}"#,
                "i".repeat(100 << 10)
            ),
            -32600,
            null.clone(),
        ),
        case(
            "method as a number",
            r#"{"jsonrpc":"2.0","id":7,"method":5}"#,
            -32600,
            seven.clone(),
        ),
        // -32601
        case(
            "unknown method",
            call("tasks/get", json!({})),
            -32601,
            seven.clone(),
        ),
        case(
            "a 100 KiB method name",
            call(&"M".repeat(100 << 10), json!({})),
            -32601,
            seven.clone(),
        ),
        case(
            "method names are case-sensitive",
            call("sendmessage", json!({})),
            -32601,
            seven.clone(),
        ),
        // -32602
        case(
            "params as an array",
            r#"{"jsonrpc":"2.0","id":7,"method":"GetTask","params":["x"]}"#,
            -32602,
            seven.clone(),
        ),
        case(
            "SendMessage without a message",
            call("SendMessage", json!({})),
            -32602,
            seven.clone(),
        ),
        case(
            "a message without a data part",
            call(
                "SendMessage",
                json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "hello"}]}}),
            ),
            -32602,
            seven.clone(),
        ),
        case(
            "a data part with a mistyped field",
            call("SendMessage", message(wrong_types)),
            -32602,
            seven.clone(),
        ),
        case(
            "a data part missing fields",
            call("SendMessage", message(json!({"tenantId": "TENANT_001"}))),
            -32602,
            seven.clone(),
        ),
        case(
            "a message from the agent role",
            call("SendMessage", from_agent),
            -32602,
            seven.clone(),
        ),
        case(
            "a 0.3-style role",
            call(
                "SendMessage",
                json!({"message": {"messageId": "m", "role": "user", "parts": [{"data": {}}]}}),
            ),
            -32602,
            seven.clone(),
        ),
        case(
            "a part with two contents",
            call("SendMessage", two_contents),
            -32602,
            seven.clone(),
        ),
        case(
            "no parts",
            call(
                "SendMessage",
                json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": []}}),
            ),
            -32602,
            seven.clone(),
        ),
        case(
            "negative historyLength",
            call("GetTask", json!({"id": finished_task, "historyLength": -1})),
            -32602,
            seven.clone(),
        ),
        case(
            "a 100 KiB role name",
            call(
                "SendMessage",
                json!({"message": {"messageId": "m", "role": "R".repeat(100 << 10), "parts": [{"data": {}}]}}),
            ),
            -32602,
            seven.clone(),
        ),
        case(
            "GetTask with a numeric id",
            call("GetTask", json!({"id": 5})),
            -32602,
            seven.clone(),
        ),
        case(
            "ListTasks pageSize 0",
            call("ListTasks", json!({"pageSize": 0})),
            -32602,
            seven.clone(),
        ),
        case(
            "ListTasks pageSize 101",
            call("ListTasks", json!({"pageSize": 101})),
            -32602,
            seven.clone(),
        ),
        case(
            "ListTasks with an unknown state",
            call("ListTasks", json!({"status": "completed"})),
            -32602,
            seven.clone(),
        ),
        case(
            "ListTasks with a forged page token",
            call("ListTasks", json!({"pageToken": "abc"})),
            -32602,
            seven.clone(),
        ),
        // -32001
        case(
            "GetTask of an unknown task",
            call("GetTask", json!({"id": "no-such-task"})),
            -32001,
            seven.clone(),
        ),
        case(
            "CancelTask of an unknown task",
            call("CancelTask", json!({"id": "no-such-task"})),
            -32001,
            seven.clone(),
        ),
        case(
            "a message to an unknown task",
            call("SendMessage", to_unknown),
            -32001,
            seven.clone(),
        ),
        // -32002
        case(
            "CancelTask of a finished task",
            call("CancelTask", json!({"id": finished_task})),
            -32002,
            seven.clone(),
        ),
        // -32003
        case(
            "push notification config",
            call(
                "CreateTaskPushNotificationConfig",
                json!({"taskId": finished_task, "url": "http://127.0.0.1:1/"}),
            ),
            -32003,
            seven.clone(),
        ),
        case(
            "SendMessage asking for push notifications",
            call("SendMessage", push),
            -32003,
            seven.clone(),
        ),
        // -32004
        case(
            "SendStreamingMessage",
            call("SendStreamingMessage", message(a2a::seed_request())),
            -32004,
            seven.clone(),
        ),
        case(
            "SubscribeToTask",
            call("SubscribeToTask", json!({"id": finished_task})),
            -32004,
            seven.clone(),
        ),
        case(
            "a message to a finished task",
            call("SendMessage", to_finished),
            -32004,
            seven.clone(),
        ),
        // -32007
        case(
            "GetExtendedAgentCard",
            call("GetExtendedAgentCard", json!({})),
            -32007,
            seven.clone(),
        ),
        // -32009
        Case {
            name: "A2A-Version 0.3",
            headers: "A2A-Version: 0.3\r\n",
            body: call("GetTask", json!({"id": finished_task})),
            code: -32009,
            id: seven.clone(),
        },
    ]
}

#[test]
fn a2a_v1_every_error_code_and_json_rpc_abuse_get_200_errors_and_the_gateway_keeps_serving() {
    let gw = gateway();
    let addr = gw.addr();
    let finished = send(addr, a2a::seed_request())["id"]
        .as_str()
        .unwrap()
        .to_string();
    let cases = cases(&finished);
    let mut codes: Vec<i64> = cases.iter().map(|c| c.code).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(
        codes,
        [-32700, -32602, -32601, -32600, -32009, -32007, -32004, -32003, -32002, -32001]
    );
    let mut failures = Vec::new();
    for c in cases {
        let r = rpc_raw(addr, c.headers, &c.body);
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let ok = r.status == 200
            && body["jsonrpc"] == "2.0"
            && body["id"] == c.id
            && body.get("result").is_none()
            && body["error"]["code"] == c.code
            && body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty() && m.len() < 400);
        // Errors but a parse error carry the ErrorInfo the Python SDK reads.
        let info_ok = c.code == -32700
            || body["error"]["data"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo";
        if !ok || !info_ok {
            failures.push(format!(
                "{}: want HTTP 200, code {}, id {}; got {} {}",
                c.name,
                c.code,
                c.id,
                r.status,
                String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
            ));
        }
        // Whatever happened, a good SendMessage and the seed's endpoint are served.
        assert_eq!(
            send(addr, a2a::seed_request())["status"]["state"],
            "TASK_STATE_COMPLETED",
            "after {}",
            c.name
        );
        good_request(addr);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a2a_v1_body_limits_and_methods_are_the_servers() {
    let gw = Gateway::start(GatewayOptions {
        max_body: 4096,
        ..GatewayOptions::default()
    })
    .unwrap();
    let addr = gw.addr();
    let big = call("SendMessage", message(json!({"blob": "x".repeat(10_000)})));
    let r = rpc_raw(addr, "", &big);
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["ok"], false);
    let get = response(send_raw(
        addr,
        b"GET /a2a/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    ));
    assert_eq!(get.status, 405);
    assert_eq!(get.header("allow").as_deref(), Some("POST"));
    assert_eq!(
        send(addr, a2a::seed_request())["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
}

#[test]
fn a2a_v1_the_task_store_is_bounded() {
    let gw = gateway();
    let addr = gw.addr();
    let first = send(addr, a2a::seed_request())["id"].clone();
    for _ in 0..xtask::a2a::v1::tasks::MAX_TASKS {
        send(addr, a2a::seed_request());
    }
    let gone = rpc(addr, "GetTask", json!({"id": first}));
    assert_eq!(gone["error"]["code"], -32001, "{gone}");
    let listed = rpc(addr, "ListTasks", json!({"pageSize": 1}));
    assert_eq!(
        listed["result"]["totalSize"],
        xtask::a2a::v1::tasks::MAX_TASKS
    );
}

#[test]
fn a2a_v1_probe_reads_the_card_sends_allowed_and_denied_and_reads_back() {
    let gw = gateway();
    let probed = a2a::probe(&gw.url()).unwrap();
    let v1 = probed.a2a_v1.clone().expect("the gateway serves A2A 1.0");
    assert_eq!(v1.interface_url, format!("{}/a2a/v1", gw.url()));
    assert_eq!(v1.protocol_version, "1.0");
    assert_eq!(v1.allowed.state, TaskState::Completed);
    assert!(v1.allowed.allow);
    assert_eq!(v1.denied.state, TaskState::Rejected);
    assert!(!v1.denied.allow && !v1.denied.reasons.is_empty());
    assert_eq!(v1.read_back.task_id, v1.allowed.task_id);
    assert_eq!(v1.read_back.hash, v1.allowed.hash);
    let out = probed.to_json();
    assert_eq!(out["a2a_v1"]["denied"]["state"], "TASK_STATE_REJECTED");
}

/// The shared virtual environment's interpreter (`MC_TEST_PYTHON`, else
/// `<workspace>/.venv/bin/python`) when it has `a2a-sdk`; otherwise the test
/// is skipped, except under `CI=true`, where it fails.
fn python_with_a2a_sdk() -> Option<PathBuf> {
    let python = std::env::var_os("MC_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python")
        });
    let has_sdk = Command::new(&python)
        .args(["-c", "import a2a.client, a2a.types.a2a_pb2"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_sdk {
        let why = format!(
            "{} with a2a-sdk 1.x is missing (python3 -m venv .venv && .venv/bin/pip install 'a2a-sdk>=1.3,<2'; .ci/run does)",
            python.display()
        );
        common::skip(&why);
        return None;
    }
    Some(python)
}

#[test]
fn a2a_v1_the_official_python_sdk_talks_to_the_gateway() {
    let Some(python) = python_with_a2a_sdk() else {
        return;
    };
    let (_dir, log, gw) = a2a_http::logged_gateway("decisions.jsonl");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/a2a_sdk_client.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script).arg(gw.url());
    let out = common::run_within(&mut cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "the SDK client failed:\n{}",
        common::stderr(&out)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the SDK client printed no JSON ({e}): {}",
            common::stdout(&out)
        )
    });

    assert_eq!(seen["card"]["url"], format!("{}/a2a/v1", gw.url()));
    assert_eq!(seen["card"]["protocolBinding"], "JSONRPC");
    assert_eq!(seen["card"]["protocolVersion"], "1.0");
    assert_eq!(seen["card"]["streaming"], false);
    assert_eq!(seen["card"]["skills"], json!(["governed-perform"]));

    let allowed = &seen["allowed"];
    assert_eq!(allowed["state"], "TASK_STATE_COMPLETED");
    let payload = &allowed["artifactData"][0];
    assert_eq!(payload["result"]["echoTask"], a2a::seed_request()["task"]);
    assert_eq!(
        payload["provenance"]["hash"],
        a2a::provenance_hash(&payload["result"])
    );
    assert_eq!(allowed["history"], 1);

    let denied = &seen["denied"];
    assert_eq!(denied["state"], "TASK_STATE_REJECTED");
    assert!(denied["statusText"][0]
        .as_str()
        .unwrap()
        .starts_with("denied by policy: "));
    assert_eq!(denied["statusData"][0]["result"]["policy"]["allow"], false);

    assert_eq!(seen["readBack"]["id"], allowed["id"]);
    assert_eq!(seen["readBack"]["state"], "TASK_STATE_COMPLETED");
    assert_eq!(seen["readBack"]["history"], 0, "historyLength 0 was asked");
    assert_eq!(seen["listed"]["count"], 1);
    assert_eq!(seen["listed"]["more"], true);
    assert_eq!(seen["errors"]["getUnknown"], "TaskNotFoundError");
    assert_eq!(seen["errors"]["cancelFinished"], "TaskNotCancelableError");
    assert_eq!(seen["strict"], true);

    gw.shutdown().unwrap();
    let decisions = std::fs::read_to_string(&log).unwrap();
    // Two through the SDK client, two in the strict raw checks.
    assert_eq!(decisions.lines().count(), 4, "{decisions}");
}

/// A proxy in front of the gateway that answers a request with the status
/// `canned(method, path)` gives, or forwards it (one request at a time per
/// connection, framed by `Content-Length`). Serves until the test process
/// ends.
fn proxy(upstream: SocketAddr, canned: fn(&str, &str) -> Option<u16>) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut client = client;
                let mut upstream = a2a_http::connect(upstream);
                loop {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        head.push_str(&line);
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).unwrap();
                    let mut words = head.split(' ');
                    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                    if let Some(status) = canned(method, path) {
                        let nf = b"{\"error\":\"canned\"}";
                        let reply = format!(
                            "HTTP/1.1 {status} Canned\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                            nf.len()
                        );
                        client.write_all(reply.as_bytes()).unwrap();
                        client.write_all(nf).unwrap();
                        continue;
                    }
                    upstream.write_all(head.as_bytes()).unwrap();
                    upstream.write_all(&body).unwrap();
                    let r = response(a2a_http::read_response(&mut upstream));
                    client.write_all(r.head.as_bytes()).unwrap();
                    client.write_all(&r.body).unwrap();
                }
            });
        }
    });
    url
}

#[test]
fn a2a_v1_an_agent_that_speaks_only_a2a_1_0_is_probed_and_loaded_through_send_message() {
    let (_dir, log, gw) = a2a_http::logged_gateway("decisions.jsonl");
    // An agent that speaks only A2A 1.0: no `/a2a/perform`.
    let agent = proxy(gw.addr(), |_, path| (path == "/a2a/perform").then_some(404));

    let probed = a2a::probe(&agent).unwrap();
    // The card came through the proxy, so it names the proxy.
    assert_eq!(probed.url, format!("{agent}/a2a/v1"));
    assert!(probed.example.allow);
    assert!(probed.policy.residency_pass && probed.policy.persisted_only);
    assert_eq!(probed.response["status"]["state"], "TASK_STATE_COMPLETED");
    assert!(!probed.checks.pqid.allow);
    assert!(probed.a2a_v1.is_some());

    let loaded = a2a::load(&agent, 20, 2, Duration::from_secs(10)).unwrap();
    assert_eq!((loaded.requests, loaded.errors), (20, 0), "{loaded:?}");

    gw.shutdown().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let paths: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["path"].clone())
        .collect();
    // Probe: 2 checks + 3 seed requests; load: 20. All through SendMessage.
    assert_eq!(paths.len(), 25);
    assert!(paths.iter().all(|p| p == "/a2a/v1"), "{paths:?}");
}

#[test]
fn a2a_v1_a_gateway_without_a_card_like_the_seed_mock_is_probed_as_before() {
    let gw = gateway();
    // The seed's Python mock: 501 to every GET, 404 to a POST elsewhere.
    let seed_like = proxy(gw.addr(), |method, path| match (method, path) {
        ("GET", _) => Some(501),
        ("POST", "/a2a/perform") => None,
        _ => Some(404),
    });
    let probed = a2a::probe(&seed_like).unwrap();
    assert!(probed.a2a_v1.is_none());
    assert_eq!(probed.url, format!("{seed_like}/a2a/perform"));
    assert!(probed.example.allow && probed.policy.residency_pass && probed.policy.persisted_only);
    assert_eq!(probed.to_json()["a2a_v1"], Value::Null);
    let loaded = a2a::load(&seed_like, 10, 2, Duration::from_secs(10)).unwrap();
    assert_eq!((loaded.requests, loaded.errors), (10, 0));
}

#[test]
fn a2a_v1_a_policy_that_fails_to_decide_is_an_internal_error_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    // Loads (the empty input gets the default) but gives no boolean `allow`
    // for the tenant `BREAK`.
    let rego = r#"package a2a

default decision := {"allow": false, "reasons": ["default"]}

decision := {"allow": "yes", "reasons": []} if input.tenantId == "BREAK"
"#;
    let gw = Gateway::start(GatewayOptions {
        policy: a2a::PolicySource::Text {
            name: "broken.rego".to_string(),
            rego: rego.to_string(),
        },
        decision_log: Some(log.clone()),
        ..GatewayOptions::default()
    })
    .unwrap();
    let mut request = a2a::seed_request();
    request["tenantId"] = json!("BREAK");
    let answer = rpc(gw.addr(), "SendMessage", message(request));
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("policy error: "));
    // No task was kept for it.
    let listed = rpc(gw.addr(), "ListTasks", json!({}));
    assert_eq!(listed["result"]["totalSize"], 0);
    gw.shutdown().unwrap();
    let line: Value = serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(line["allow"], false);
    assert!(line["reasons"][0]
        .as_str()
        .unwrap()
        .starts_with("policy error: "));
}

#[test]
fn a2a_v1_probe_cli_reports_the_a2a_1_0_checks_from_a2a_url() {
    let gw = gateway();
    let project = common::temp_project();
    let out = common::run(
        common::xtask(project.path())
            .env("A2A_URL", gw.url())
            .args(["a2a", "probe", "--out", "out/a2a-probe.json"]),
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let written: Value = serde_json::from_str(
        &std::fs::read_to_string(project.path().join("out/a2a-probe.json")).unwrap(),
    )
    .unwrap();
    let v1 = &written["a2a_v1"];
    assert_eq!(v1["interface_url"], format!("{}/a2a/v1", gw.url()));
    assert_eq!(v1["allowed"]["state"], "TASK_STATE_COMPLETED");
    assert_eq!(v1["denied"]["state"], "TASK_STATE_REJECTED");
    assert_eq!(v1["read_back"]["task_id"], v1["allowed"]["task_id"]);
    // The task it created is there to read on the gateway.
    let task = rpc(
        gw.addr(),
        "GetTask",
        json!({"id": v1["allowed"]["task_id"]}),
    );
    assert_eq!(task["result"]["status"]["state"], "TASK_STATE_COMPLETED");
}

/// The value of the `a2a_requests_total` series with these labels (0 when absent).
fn requests_total(gw: &Gateway, labels: &[&str]) -> f64 {
    let r = response(send_raw(
        gw.addr(),
        b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    ));
    assert_eq!(r.status, 200);
    String::from_utf8(r.body)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("a2a_requests_total{") && labels.iter().all(|x| l.contains(x)))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum()
}

#[test]
fn a2a_v1_decisions_and_requests_are_in_the_metrics() {
    let gw = gateway();
    let route = r#"route="/a2a/v1""#;
    send(gw.addr(), a2a::seed_request());
    send(gw.addr(), a2a::seed_request());
    send(gw.addr(), denied_request());
    rpc(gw.addr(), "GetTask", json!({"id": "no-such-task"}));
    let card = r#"route="/.well-known/agent-card.json""#;
    response(send_raw(
        gw.addr(),
        b"GET /.well-known/agent-card.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    ));
    assert_eq!(requests_total(&gw, &[route, r#"decision="allow""#]), 2.0);
    assert_eq!(requests_total(&gw, &[route, r#"decision="deny""#]), 1.0);
    assert_eq!(requests_total(&gw, &[route, r#"decision="none""#]), 1.0);
    assert_eq!(requests_total(&gw, &[card, r#"code="200""#]), 1.0);
}
