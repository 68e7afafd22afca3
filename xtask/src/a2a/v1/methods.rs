//! The A2A 1.0 methods the gateway serves over JSON-RPC: `SendMessage` (the
//! policy decides; the answer is a finished task), `GetTask`, `ListTasks` and
//! `CancelTask`. Each takes the request's `params` and gives the `result` or
//! the protocol's error; [`super::jsonrpc`] wraps them in the envelope.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::jsonrpc::{clip, ErrorCode, Outcome, RpcError};
use super::tasks::{new_id, now_timestamp, Stored};
use super::types::{
    Artifact, GetTaskRequest, ListTasksRequest, ListTasksResponse, Message, Part, Role,
    SendMessageRequest, Task, TaskState, TaskStatus,
};
use crate::a2a::policy::Decision;
use crate::a2a::server::{check_perform_input, State};

/// `ListTasks` page size when none is given, and the largest allowed.
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 100;

/// Reads `params` as `T`; a mismatch is -32602 naming serde's complaint.
fn params_as<T: DeserializeOwned>(method: &str, params: Value) -> Result<T, RpcError> {
    serde_json::from_value(params).map_err(|e| {
        RpcError::new(
            ErrorCode::InvalidParams,
            // serde quotes the offending value whole: clip it.
            format!("invalid params for {method}: {}", clip(&e.to_string())),
        )
    })
}

/// An optional `historyLength`: absent, or an integer 0 or more.
fn history_length(value: Option<i64>) -> Result<Option<u32>, RpcError> {
    match value {
        None => Ok(None),
        Some(n) if n >= 0 => Ok(Some(u32::try_from(n).unwrap_or(u32::MAX))),
        Some(n) => Err(RpcError::new(
            ErrorCode::InvalidParams,
            format!("historyLength must be 0 or more, got {n}"),
        )),
    }
}

/// `SendMessage`: the result, and whether the policy allowed the request.
pub(super) fn send_message(state: &State, params: Value) -> Result<(Vec<u8>, bool), RpcError> {
    let (message, history) = read_send_message(state, params)?;
    let data = request_data(&message)?;
    let task_id = new_id();
    let decision = decide(state, &data, &task_id)?;
    let task = decided_task(message, task_id, &data, &decision);
    // The task is kept as its JSON, which is the answer too unless the
    // client asked for less history.
    let whole = serde_json::to_string(&task).expect("a task serialises");
    let mut answer = Vec::with_capacity(whole.len() + 10);
    answer.extend_from_slice(br#"{"task":"#);
    if history.is_none_or(|n| n as usize >= task.history.len()) {
        answer.extend_from_slice(whole.as_bytes());
    } else {
        serde_json::to_writer(&mut answer, &task.view(history, true)).expect("a task serialises");
    }
    answer.push(b'}');
    state.v1.tasks.insert(Stored::new(&task, whole));
    Ok((answer, decision.allow))
}

/// Step 1 of `SendMessage`: the params, checked; the message and the
/// `historyLength` asked for.
fn read_send_message(state: &State, params: Value) -> Result<(Message, Option<u32>), RpcError> {
    let req: SendMessageRequest = params_as("SendMessage", params)?;
    let config = req.configuration.unwrap_or_default();
    if config.task_push_notification_config.is_some() {
        return Err(RpcError::new(
            ErrorCode::PushNotificationNotSupported,
            "push notifications are not supported by this agent",
        ));
    }
    let history = history_length(config.history_length)?;
    check_message(&req.message)?;
    let task_id = &req.message.task_id;
    if !task_id.is_empty() {
        return Err(match state.v1.tasks.get(task_id) {
            Some(task) => RpcError::new(
                ErrorCode::UnsupportedOperation,
                format!(
                    "task {} is {}, a terminal state: it accepts no more messages; send a message without taskId",
                    clip(&task.id),
                    task.state.name()
                ),
            )
            .with("taskId", &task.id),
            None => not_found(task_id),
        });
    }
    Ok((req.message, history))
}

/// Step 2: the seed's request fields, from the message's first data part
/// holding an object.
fn request_data(message: &Message) -> Result<Value, RpcError> {
    let data = message
        .parts
        .iter()
        .find_map(|p| p.data.as_ref().filter(|d| d.is_object()))
        .ok_or_else(|| RpcError::new(
            ErrorCode::InvalidParams,
            "the message has no data part holding the request: send a part {\"data\": {tenantId, purpose, residency, pqid, agent, task}}",
        ))?;
    check_perform_input(data).map_err(|e| RpcError::new(ErrorCode::InvalidParams, e))?;
    Ok(data.clone())
}

/// Step 3: the policy's decision, written to the decision log either way.
fn decide(state: &State, data: &Value, task_id: &str) -> Result<Arc<Decision>, RpcError> {
    let id = state.decision_id();
    let evaluating = std::time::Instant::now();
    let decided = state.policy.decide(data);
    state.metrics.observe_policy(evaluating.elapsed());
    let extra = [("method", "SendMessage"), ("taskId", task_id)];
    match decided {
        Ok(d) => {
            state.log_decision_with(&id, super::RPC_PATH, data, &extra, &d);
            Ok(d)
        }
        Err(e) => {
            let msg = format!("policy error: {e:#}");
            let mut line = json!({"method": "SendMessage", "taskId": task_id});
            line["allow"] = json!(false);
            line["reasons"] = json!([msg]);
            state.log_line(&id, super::RPC_PATH, data, line);
            Err(RpcError::new(ErrorCode::InternalError, msg))
        }
    }
}

/// Step 4: the finished task. Allowed: completed, the result and its
/// provenance in an artifact. Denied: rejected, the reasons and the same
/// payload in the status message.
fn decided_task(mut message: Message, task_id: String, data: &Value, decision: &Decision) -> Task {
    let context_id = if message.context_id.is_empty() {
        new_id()
    } else {
        message.context_id.clone()
    };
    message.task_id = task_id.clone();
    message.context_id = context_id.clone();
    let result = json!({
        "echoTask": data["task"],
        "policy": {"allow": decision.allow, "reasons": decision.reasons},
    });
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let hash = crate::a2a::provenance_hash(&result);
    let payload = json!({"result": result, "provenance": {"hash": hash, "time": time}});
    let (status, artifacts) = if decision.allow {
        let artifact = Artifact {
            artifact_id: new_id(),
            name: "result".to_string(),
            description: "the policy's decision, the echoed task and the provenance hash"
                .to_string(),
            parts: vec![Part::data(payload)],
        };
        (status(TaskState::Completed, None), vec![artifact])
    } else {
        let why = Message {
            message_id: new_id(),
            context_id: context_id.clone(),
            task_id: task_id.clone(),
            role: Role::Agent,
            parts: vec![
                Part::text(format!("denied by policy: {}", decision.reasons.join("; "))),
                Part::data(payload),
            ],
            metadata: None,
            extensions: Vec::new(),
            reference_task_ids: Vec::new(),
        };
        (status(TaskState::Rejected, Some(why)), Vec::new())
    };
    Task {
        id: task_id,
        context_id,
        status,
        artifacts,
        history: vec![message],
    }
}

/// What the gateway needs of a client's message before it can judge it.
fn check_message(m: &Message) -> Result<(), RpcError> {
    let bad = |msg: String| Err(RpcError::new(ErrorCode::InvalidParams, msg));
    if m.message_id.is_empty() {
        return bad("message.messageId must not be empty".to_string());
    }
    if m.role != Role::User {
        return bad(format!(
            "message.role must be ROLE_USER, got {}",
            serde_json::to_string(&m.role).expect("a role serialises")
        ));
    }
    if m.parts.is_empty() {
        return bad("message.parts must hold at least one part".to_string());
    }
    if let Some(i) = m.parts.iter().position(|p| p.content_count() != 1) {
        return bad(format!(
            "message.parts[{i}] must set exactly one of text, raw, url and data"
        ));
    }
    Ok(())
}

fn status(state: TaskState, message: Option<Message>) -> TaskStatus {
    TaskStatus {
        state,
        message,
        timestamp: now_timestamp(),
    }
}

fn not_found(id: &str) -> RpcError {
    RpcError::new(
        ErrorCode::TaskNotFound,
        format!(
            "task not found: {:?} (never created here, or evicted: the gateway keeps the latest {} tasks)",
            clip(id),
            super::tasks::MAX_TASKS
        ),
    )
    .with("taskId", clip(id).as_str())
}

pub(super) fn get_task(state: &State, params: Value) -> Outcome {
    let req: GetTaskRequest = params_as("GetTask", params)?;
    let history = history_length(req.history_length)?;
    let task = state
        .v1
        .tasks
        .get(&req.id)
        .ok_or_else(|| not_found(&req.id))?;
    Ok(match history {
        None => task.json.as_bytes().to_vec(),
        Some(_) => task.view(history, true).into_bytes(),
    })
}

pub(super) fn cancel_task(state: &State, params: Value) -> Outcome {
    let req: GetTaskRequest = params_as("CancelTask", params)?;
    let task = state
        .v1
        .tasks
        .get(&req.id)
        .ok_or_else(|| not_found(&req.id))?;
    // Every task here is finished when SendMessage answers (see `tasks`), so
    // none can be canceled.
    Err(RpcError::new(
        ErrorCode::TaskNotCancelable,
        format!(
            "task {} is {}, a terminal state: it cannot be canceled",
            clip(&task.id),
            task.state.name()
        ),
    )
    .with("taskId", &task.id))
}

pub(super) fn list_tasks(state: &State, params: Value) -> Outcome {
    let req: ListTasksRequest = params_as("ListTasks", params)?;
    let bad = |msg: String| RpcError::new(ErrorCode::InvalidParams, msg);
    let page_size = match req.page_size {
        None => DEFAULT_PAGE_SIZE,
        Some(n) if (1..=MAX_PAGE_SIZE as i64).contains(&n) => n as usize,
        Some(n) => {
            return Err(bad(format!(
                "pageSize must be 1 to {MAX_PAGE_SIZE}, got {n}"
            )))
        }
    };
    let history = history_length(req.history_length)?;
    let after = match &req.status_timestamp_after {
        None => None,
        Some(t) => Some(comparable_timestamp(t).ok_or_else(|| {
            bad(format!(
                "statusTimestampAfter must be an RFC 3339 UTC time like 2026-01-02T03:04:05Z, got {:?}",
                clip(t)
            ))
        })?),
    };
    let keep = |t: &Stored| {
        (req.context_id.is_empty() || t.context_id == req.context_id)
            && req.status.is_none_or(|s| t.state == s)
            && after
                .as_ref()
                .is_none_or(|a| comparable_timestamp(&t.timestamp).is_some_and(|ts| ts >= *a))
    };
    let page = state
        .v1
        .tasks
        .list(keep, page_size, &req.page_token)
        .ok_or_else(|| bad(format!("unknown pageToken {:?}", clip(&req.page_token))))?;
    let artifacts = req.include_artifacts.unwrap_or(false);
    let response = ListTasksResponse {
        tasks: page
            .tasks
            .iter()
            .map(|t| {
                serde_json::value::RawValue::from_string(t.view(history, artifacts))
                    .expect("a view is JSON")
            })
            .collect(),
        next_page_token: page.next_page_token,
        page_size: page_size as u32,
        total_size: page.total_size as u32,
    };
    Ok(serde_json::to_vec(&response).expect("a list serialises"))
}

/// `YYYY-MM-DDTHH:MM:SS[.fff...]Z` as `YYYY-MM-DDTHH:MM:SS.mmm`, which orders
/// as text the way the times order.
fn comparable_timestamp(t: &str) -> Option<String> {
    let body = t.strip_suffix('Z').or_else(|| t.strip_suffix('z'))?;
    let (secs, frac) = body.split_once('.').unwrap_or((body, ""));
    let b = secs.as_bytes();
    let shape = b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T' || *c == b't',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shape || !frac.bytes().all(|c| c.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    let millis: String = frac.chars().chain("000".chars()).take(3).collect();
    Some(format!("{}T{}.{millis}", &secs[..10], &secs[11..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_compare_as_text_after_normalising() {
        assert_eq!(
            comparable_timestamp("2026-01-02T03:04:05Z").unwrap(),
            "2026-01-02T03:04:05.000"
        );
        assert_eq!(
            comparable_timestamp("2026-01-02T03:04:05.123456Z").unwrap(),
            "2026-01-02T03:04:05.123"
        );
        assert!(comparable_timestamp("2026-01-02T03:04:05+01:00").is_none());
        assert!(comparable_timestamp("yesterday").is_none());
    }
}
