//! The A2A 1.0 part of `a2a probe` (and of golive's gateway step): fetch the
//! agent card, find its JSON-RPC 1.x interface, send one `SendMessage` the
//! policy allows (the seed's Quickstart request) and one it denies (a
//! residency the tenant may not use), and read the allowed task back with
//! `GetTask`. Each answer is checked like `/a2a/perform`'s: the task's state,
//! the echoed task and the recomputed provenance hash.
//!
//! It talks to whatever the base URL is: the kit's gateway, or `$A2A_URL`
//! pointing at another A2A 1.0 agent that answers with the same data contract.
//! An agent that offers no A2A 1.0 JSON-RPC interface (no card: the seed's
//! Python mock answers 501 to every `GET`; or a card without a `JSONRPC`
//! interface of version 1.x) is reported as not speaking it (`null`), which
//! is not an error; an interface whose answers have the wrong shape is. An agent that speaks only A2A 1.0 (no
//! `/a2a/perform`: a `GET` of it answers 404, see [`a2a_only`]) is probed and
//! loaded through `SendMessage` alone ([`seed_probe`]): the seed's three
//! requests become three messages, so golive judges it the same way.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::{json, Value};

use super::types::TaskState;
use super::{CARD_PATH, PROTOCOL_VERSION};
use crate::a2a::probe::{Answer, PolicyChecks, ProbeChecks, ProbeResult};
use crate::a2a::{provenance_hash, seed_request};

/// What the A2A 1.0 probe found.
#[derive(Debug, Clone, Serialize)]
pub struct V1Probe {
    /// Where the card was read.
    pub card_url: String,
    /// The JSON-RPC interface URL the card names.
    pub interface_url: String,
    /// Its `protocolVersion`.
    pub protocol_version: String,
    /// The task of the allowed `SendMessage`.
    pub allowed: TaskCheck,
    /// The task of the denied `SendMessage`.
    pub denied: TaskCheck,
    /// The allowed task as `GetTask` read it back.
    pub read_back: TaskCheck,
}

/// One checked task.
#[derive(Debug, Clone, Serialize)]
pub struct TaskCheck {
    pub task_id: String,
    /// `status.state`.
    pub state: TaskState,
    /// The policy's decision in the task's result.
    pub allow: bool,
    pub reasons: Vec<String>,
    /// The provenance hash, recomputed and found equal.
    pub hash: String,
    /// Round-trip time in milliseconds.
    pub latency_ms: f64,
}

impl V1Probe {
    /// One line for the reports: what the probe saw.
    pub fn summary(&self) -> String {
        format!(
            "card ok (JSONRPC {}), SendMessage allowed: {}, denied: {}, GetTask read back",
            self.protocol_version,
            self.allowed.state.name(),
            self.denied.state.name()
        )
    }
}

/// Probes `base` (`http://host:port`); `None` when it offers no A2A 1.0
/// JSON-RPC interface.
pub fn probe(agent: &ureq::Agent, base: &str) -> Result<Option<V1Probe>> {
    let base = base.trim().trim_end_matches('/');
    let Some((card_url, interface_url, protocol_version)) = interface(agent, base)? else {
        return Ok(None);
    };

    let allowed_req = seed_request();
    let mut denied_req = seed_request();
    denied_req["residency"] = json!("EU");
    let (allowed, _) = send(agent, &interface_url, &allowed_req).context("allowed SendMessage")?;
    if allowed.state != TaskState::Completed || !allowed.allow {
        bail!(
            "the allowed SendMessage gave a {} task (want TASK_STATE_COMPLETED): {}",
            allowed.state.name(),
            allowed.reasons.join("; ")
        );
    }
    let (denied, _) = send(agent, &interface_url, &denied_req).context("denied SendMessage")?;
    if denied.state != TaskState::Rejected || denied.allow {
        bail!(
            "the SendMessage with a residency the tenant may not use gave a {} task (want TASK_STATE_REJECTED)",
            denied.state.name()
        );
    }
    let read_back = get_task(
        agent,
        &interface_url,
        &allowed.task_id,
        &allowed_req["task"],
    )
    .context("GetTask of the allowed task")?;
    if read_back.task_id != allowed.task_id
        || read_back.state != allowed.state
        || read_back.hash != allowed.hash
    {
        bail!(
            "GetTask {} read back a different task: {} {} (want {} {})",
            allowed.task_id,
            read_back.task_id,
            read_back.state.name(),
            allowed.task_id,
            allowed.state.name()
        );
    }
    Ok(Some(V1Probe {
        card_url,
        interface_url,
        protocol_version,
        allowed,
        denied,
        read_back,
    }))
}

/// The agent card at `base`: `(card URL, interface URL, protocol version)`
/// of its first `JSONRPC` interface of protocol version 1.x (this probe
/// speaks [`PROTOCOL_VERSION`]); `None` when there is no such card (any
/// status but 200, a body that is not a 1.0 card, no such interface).
fn interface(agent: &ureq::Agent, base: &str) -> Result<Option<(String, String, String)>> {
    let card_url = format!("{base}{CARD_PATH}");
    let mut resp = agent
        .get(&card_url)
        .call()
        .with_context(|| format!("cannot reach {card_url}"))?;
    if resp.status().as_u16() != 200 {
        return Ok(None);
    }
    let text = resp
        .body_mut()
        .read_to_string()
        .with_context(|| format!("cannot read {card_url}"))?;
    let card: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let found = card["supportedInterfaces"].as_array().and_then(|list| {
        list.iter().find_map(|i| {
            let url = i["url"].as_str()?;
            let version = i["protocolVersion"].as_str()?;
            (i["protocolBinding"] == "JSONRPC" && version.split('.').next() == Some("1"))
                .then(|| (card_url.clone(), url.to_string(), version.to_string()))
        })
    });
    Ok(found)
}

/// One JSON-RPC call: the `result`, or an error naming the JSON-RPC error.
fn call(agent: &ureq::Agent, url: &str, method: &str, params: Value) -> Result<(Value, f64)> {
    let body =
        json!({"jsonrpc": "2.0", "id": super::tasks::new_id(), "method": method, "params": params});
    let started = Instant::now();
    let mut resp = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("A2A-Version", PROTOCOL_VERSION)
        .send(&serde_json::to_vec(&body).expect("a JSON value serialises")[..])
        .with_context(|| format!("cannot reach {url}"))?;
    let text = resp
        .body_mut()
        .read_to_string()
        .with_context(|| format!("cannot read the answer of {url}"))?;
    let latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    let status = resp.status().as_u16();
    let answer: Value = serde_json::from_str(&text)
        .with_context(|| format!("{url} answered HTTP {status} with no JSON"))?;
    if let Some(e) = answer.get("error") {
        bail!(
            "{method} failed with JSON-RPC error {}: {}",
            e["code"],
            e["message"].as_str().unwrap_or("no message")
        );
    }
    if status != 200 || answer["jsonrpc"] != "2.0" || answer["id"] != body["id"] {
        bail!("{url} answered HTTP {status} without a JSON-RPC 2.0 response to the request");
    }
    Ok((answer["result"].clone(), latency_ms))
}

/// The JSON-RPC `SendMessage` request the probe and the load send for `request`.
pub fn send_message_body(request: &Value) -> Value {
    json!({"jsonrpc": "2.0", "id": super::tasks::new_id(), "method": "SendMessage", "params": {
        "message": {
            "messageId": super::tasks::new_id(),
            "role": "ROLE_USER",
            "parts": [{"data": request, "mediaType": "application/json"}],
        }
    }})
}

/// SendMessage of `request`: the checked task and the whole task.
fn send(agent: &ureq::Agent, url: &str, request: &Value) -> Result<(TaskCheck, Value)> {
    let params = send_message_body(request)["params"].take();
    let (result, latency_ms) = call(agent, url, "SendMessage", params)?;
    let check = check_task(&result["task"], &request["task"], latency_ms)?;
    Ok((check, result["task"].clone()))
}

/// The JSON-RPC interface URL of an agent at `base` that has no
/// `/a2a/perform` (a `GET` of it answers 404) but an A2A 1.0 card; `None`
/// when `/a2a/perform` is there (any other answer), the seed's path.
pub fn a2a_only(agent: &ureq::Agent, base: &str) -> Result<Option<String>> {
    let base = base.trim().trim_end_matches('/');
    let perform = format!("{base}/a2a/perform");
    let resp = agent
        .get(&perform)
        .call()
        .with_context(|| format!("cannot reach {perform}"))?;
    if resp.status().as_u16() != 404 {
        return Ok(None);
    }
    Ok(interface(agent, base)?.map(|(_, url, _)| url))
}

/// The seed's probe through A2A 1.0 alone, for an agent without
/// `/a2a/perform`: the example, the residency and the pqid requests as
/// `SendMessage`, plus the [`probe`] checks. `url` is the interface URL.
pub fn seed_probe(agent: &ureq::Agent, base: &str, url: &str) -> Result<ProbeResult> {
    let v1 = probe(agent, base)?.context("the agent card went away during the probe")?;
    let answer = |c: &TaskCheck| Answer {
        status: 200,
        latency_ms: c.latency_ms,
        allow: c.allow,
        reasons: c.reasons.clone(),
        hash: c.hash.clone(),
    };
    let (example, response) = send(agent, url, &seed_request()).context("the seed's request")?;
    let mut residency_req = seed_request();
    residency_req["residency"] = json!("EU");
    let (residency, _) = send(agent, url, &residency_req).context("residency check")?;
    let mut pqid_req = seed_request();
    pqid_req["pqid"] = json!("pq.adHocQuery");
    let (pqid, _) = send(agent, url, &pqid_req).context("persisted-query check")?;
    Ok(ProbeResult {
        url: url.to_string(),
        policy: PolicyChecks {
            residency_pass: example.allow && !residency.allow,
            persisted_only: example.allow && !pqid.allow,
        },
        example: answer(&example),
        response,
        checks: ProbeChecks {
            residency: answer(&residency),
            pqid: answer(&pqid),
        },
        a2a_v1: Some(v1),
    })
}

/// Whether a load answer counts as a success: a JSON-RPC response with a
/// `result` (a JSON-RPC error travels in an HTTP 200 too).
pub fn load_answer_ok(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| v.get("result").is_some())
}

fn get_task(agent: &ureq::Agent, url: &str, id: &str, echo: &Value) -> Result<TaskCheck> {
    let (task, latency_ms) = call(agent, url, "GetTask", json!({"id": id, "historyLength": 1}))?;
    if task["history"].as_array().is_some_and(|h| h.len() > 1) {
        bail!("GetTask with historyLength 1 returned more than one message");
    }
    check_task(&task, echo, latency_ms)
}

/// Checks a task: its result (in the artifact when completed, in the status
/// message when rejected) echoes `echo` and its provenance hash recomputes.
pub fn check_task(task: &Value, echo: &Value, latency_ms: f64) -> Result<TaskCheck> {
    let shape = |what: &str| anyhow::anyhow!("wrong task shape: {what}");
    let task_id = task["id"].as_str().ok_or_else(|| shape("no id"))?;
    let state: TaskState =
        serde_json::from_value(task["status"]["state"].clone()).map_err(|_| {
            shape(&format!(
                "status.state {} is not an A2A 1.0 task state",
                task["status"]["state"]
            ))
        })?;
    let parts = match state {
        TaskState::Completed => &task["artifacts"][0]["parts"],
        _ => &task["status"]["message"]["parts"],
    };
    let payload = parts
        .as_array()
        .and_then(|ps| {
            ps.iter()
                .find_map(|p| p.get("data").filter(|d| d.is_object()))
        })
        .ok_or_else(|| shape("no data part with the result"))?;
    let result = &payload["result"];
    if result["echoTask"] != *echo {
        bail!("the task's result does not echo the task sent");
    }
    let allow = result["policy"]["allow"]
        .as_bool()
        .ok_or_else(|| shape("result.policy.allow is not a boolean"))?;
    let reasons = result["policy"]["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let hash = payload["provenance"]["hash"]
        .as_str()
        .ok_or_else(|| shape("no provenance.hash"))?;
    let recomputed = provenance_hash(result);
    if hash != recomputed {
        bail!("provenance hash {hash} does not match the result (recomputed {recomputed})");
    }
    Ok(TaskCheck {
        task_id: task_id.to_string(),
        state,
        allow,
        reasons,
        hash: recomputed,
        latency_ms,
    })
}
