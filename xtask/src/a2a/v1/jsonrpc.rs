//! JSON-RPC 2.0 at the interface URL: the envelope, the A2A 1.0 methods and
//! the protocol's error codes.
//!
//! Every answer is HTTP 200 with a JSON-RPC response object, errors included,
//! as A2A clients expect; only what the HTTP server refuses before a body is
//! read (a body over the limit, one that does not arrive in time, a request
//! hyper cannot parse) keeps its HTTP status. Errors use the codes of the
//! specification's section 5.4 and 9.5: -32700 a body that is not JSON (or
//! not UTF-8, or nested deeper than serde_json's 128 levels), -32600 a request
//! that is not a JSON-RPC 2.0 request object, -32601 an unknown method,
//! -32602 bad params (including a message the policy cannot judge), -32603 a
//! policy that fails to evaluate, and the A2A codes -32001 task not found,
//! -32002 task not cancelable, -32003 push notifications not supported,
//! -32004 unsupported operation (streaming, a message to a finished task),
//! -32007 no extended card, -32009 an `A2A-Version` other than 1.x (a
//! request without the header is taken as 1.0, so curl works). Every error
//! but a parse error carries `data` as the list of one `google.rpc.ErrorInfo`,
//! as the Python SDK's server sends and its client reads (`reason`,
//! `domain: "a2a-protocol.org"`, `metadata`).
//!
//! Choices where JSON-RPC leaves room, made like the SDK's own server: a batch
//! (a JSON array) is refused as a whole with one -32600, a request without an
//! `id` (a notification) gets -32600 too, since every A2A method answers, and
//! an `id` must be a string of at most [`MAX_ID_LEN`] bytes, an integer or
//! null: a fraction, a number beyond 64 bits, a boolean, an object or a huge
//! string is -32600 with a null `id` (echoing a rounded number would hand the
//! client an id it never sent).

use hyper::StatusCode;
use serde_json::{json, Map, Value};

use super::methods::{cancel_task, get_task, list_tasks, send_message};
use crate::a2a::metrics::Decision;
use crate::a2a::server::{bytes_reply, Reply, State};

/// The header a client names its protocol version in.
pub const VERSION_HEADER: &str = "a2a-version";
/// The longest string `id` accepted, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// A JSON-RPC error of this gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    ParseError,
    InvalidRequest,
    MethodNotFound,
    InvalidParams,
    InternalError,
    TaskNotFound,
    TaskNotCancelable,
    PushNotificationNotSupported,
    UnsupportedOperation,
    ExtendedAgentCardNotConfigured,
    VersionNotSupported,
}

impl ErrorCode {
    /// The numeric code.
    pub fn code(self) -> i64 {
        match self {
            ErrorCode::ParseError => -32700,
            ErrorCode::InvalidRequest => -32600,
            ErrorCode::MethodNotFound => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::InternalError => -32603,
            ErrorCode::TaskNotFound => -32001,
            ErrorCode::TaskNotCancelable => -32002,
            ErrorCode::PushNotificationNotSupported => -32003,
            ErrorCode::UnsupportedOperation => -32004,
            ErrorCode::ExtendedAgentCardNotConfigured => -32007,
            ErrorCode::VersionNotSupported => -32009,
        }
    }

    /// The `ErrorInfo.reason` the Python SDK gives the error (none for a
    /// parse error).
    fn reason(self) -> Option<&'static str> {
        Some(match self {
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::MethodNotFound => "METHOD_NOT_FOUND",
            ErrorCode::InvalidParams => "INVALID_PARAMS",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::TaskNotFound => "TASK_NOT_FOUND",
            ErrorCode::TaskNotCancelable => "TASK_NOT_CANCELABLE",
            ErrorCode::PushNotificationNotSupported => "PUSH_NOTIFICATION_NOT_SUPPORTED",
            ErrorCode::UnsupportedOperation => "UNSUPPORTED_OPERATION",
            ErrorCode::ExtendedAgentCardNotConfigured => "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
            ErrorCode::VersionNotSupported => "VERSION_NOT_SUPPORTED",
            ErrorCode::ParseError => return None,
        })
    }
}

/// An error answer: its code, message and `ErrorInfo` metadata.
#[derive(Debug, Clone)]
pub struct RpcError {
    pub code: ErrorCode,
    pub message: String,
    metadata: Map<String, Value>,
}

impl RpcError {
    pub(super) fn new(code: ErrorCode, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            metadata: Map::new(),
        }
    }

    pub(super) fn with(mut self, key: &str, value: &str) -> RpcError {
        self.metadata
            .insert(key.to_string(), Value::String(value.to_string()));
        self
    }

    fn to_json(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), json!(self.code.code()));
        error.insert("message".into(), json!(self.message));
        if let Some(reason) = self.code.reason() {
            error.insert(
                "data".into(),
                json!([{
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": reason,
                    "domain": "a2a-protocol.org",
                    "metadata": self.metadata,
                }]),
            );
        }
        Value::Object(error)
    }
}

/// A method's `result` as serialised JSON (the methods write it once, and
/// `SendMessage` measures the task it keeps by the same bytes), or its error.
pub(super) type Outcome = Result<Vec<u8>, RpcError>;

/// The HTTP answer to one JSON-RPC body: always `200`.
pub(in crate::a2a) fn reply(state: &State, version: Option<&str>, body: &[u8]) -> Reply {
    let (id, outcome, decision) = answer(state, version, body);
    let result = outcome.as_ref().map_or(0, Vec::len);
    let mut bytes = Vec::with_capacity(result + 64);
    bytes.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    serde_json::to_writer(&mut bytes, &id).expect("a JSON value serialises");
    match outcome {
        Ok(result) => {
            bytes.extend_from_slice(br#","result":"#);
            bytes.extend_from_slice(&result);
        }
        Err(e) => {
            bytes.extend_from_slice(br#","error":"#);
            serde_json::to_writer(&mut bytes, &e.to_json()).expect("a JSON value serialises");
        }
    }
    bytes.push(b'}');
    let mut reply = bytes_reply(StatusCode::OK, bytes);
    if let Some(decision) = decision {
        // The metrics count the decision, as for `/a2a/perform`.
        reply.extensions_mut().insert(decision);
    }
    reply
}

/// The response's `id`, the outcome for a body, and the policy's decision if
/// one was made.
fn answer(state: &State, version: Option<&str>, body: &[u8]) -> (Value, Outcome, Option<Decision>) {
    let parsed = std::str::from_utf8(body)
        .map_err(|e| format!("request body is not valid UTF-8: {e}"))
        .and_then(|text| serde_json::from_str::<Value>(text).map_err(|e| e.to_string()));
    let value = match parsed {
        Ok(v) => v,
        Err(e) => {
            let msg = format!("invalid JSON payload: {e}");
            return (
                Value::Null,
                Err(RpcError::new(ErrorCode::ParseError, msg)),
                None,
            );
        }
    };
    let (id, method, params) = match envelope(value) {
        Ok(parts) => parts,
        Err(refused) => {
            let (id, e) = *refused;
            return (id, Err(e), None);
        }
    };
    if let Some(e) = version_error(version) {
        return (id, Err(e), None);
    }
    let (outcome, decision) = dispatch(state, &method, params);
    (id, outcome, decision)
}

/// The error for an `A2A-Version` header this agent does not speak.
fn version_error(version: Option<&str>) -> Option<RpcError> {
    let v = version.map(str::trim).filter(|v| !accepts_version(v))?;
    Some(
        RpcError::new(
            ErrorCode::VersionNotSupported,
            format!(
                "A2A version {:?} is not supported; this agent speaks {}",
                clip(v),
                super::PROTOCOL_VERSION
            ),
        )
        .with("supportedVersions", super::PROTOCOL_VERSION),
    )
}

/// An absent or empty header is taken as this version; any 1.x is accepted.
fn accepts_version(v: &str) -> bool {
    v.is_empty() || v == "1" || v.starts_with("1.")
}

/// Checks the request object: `(id, method, params)`, or the error with the
/// `id` to answer it under.
fn envelope(value: Value) -> Result<(Value, String, Value), Box<(Value, RpcError)>> {
    let invalid =
        |id: Value, msg: &str| Box::new((id, RpcError::new(ErrorCode::InvalidRequest, msg)));
    let mut obj = match value {
        Value::Object(obj) => obj,
        Value::Array(_) => {
            return Err(invalid(
                Value::Null,
                "batch requests are not supported; send one request object per HTTP request",
            ))
        }
        _ => {
            return Err(invalid(
                Value::Null,
                "the request must be a JSON-RPC 2.0 request object",
            ))
        }
    };
    let id = match obj.remove("id") {
        None => {
            return Err(invalid(
                Value::Null,
                "a request needs an id: notifications are not supported, every A2A method answers",
            ))
        }
        Some(id) if valid_id(&id) => id,
        Some(_) => {
            return Err(invalid(
                Value::Null,
                &format!("id must be a string of at most {MAX_ID_LEN} bytes, an integer or null"),
            ))
        }
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(id, "jsonrpc must be exactly \"2.0\""));
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        _ => return Err(invalid(id, "method must be a string")),
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => {
            let e = RpcError::new(ErrorCode::InvalidParams, "params must be an object");
            return Err(Box::new((id, e)));
        }
    };
    Ok((id, method, params))
}

fn valid_id(id: &Value) -> bool {
    match id {
        Value::Null => true,
        Value::String(s) => s.len() <= MAX_ID_LEN,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

fn dispatch(state: &State, method: &str, params: Value) -> (Outcome, Option<Decision>) {
    let outcome = match method {
        "SendMessage" => {
            return match send_message(state, params) {
                Ok((result, true)) => (Ok(result), Some(Decision::Allow)),
                Ok((result, false)) => (Ok(result), Some(Decision::Deny)),
                Err(e) => (Err(e), None),
            }
        }
        "GetTask" => get_task(state, params),
        "ListTasks" => list_tasks(state, params),
        "CancelTask" => cancel_task(state, params),
        "SendStreamingMessage" | "SubscribeToTask" => Err(RpcError::new(
            ErrorCode::UnsupportedOperation,
            format!("{method}: streaming is not supported by this agent (capabilities.streaming is false); use SendMessage"),
        )),
        "CreateTaskPushNotificationConfig"
        | "SetTaskPushNotificationConfig"
        | "GetTaskPushNotificationConfig"
        | "ListTaskPushNotificationConfigs"
        | "ListTaskPushNotificationConfig"
        | "DeleteTaskPushNotificationConfig" => Err(RpcError::new(
            ErrorCode::PushNotificationNotSupported,
            format!("{method}: push notifications are not supported by this agent"),
        )),
        "GetExtendedAgentCard" => Err(RpcError::new(
            ErrorCode::ExtendedAgentCardNotConfigured,
            "this agent has no extended agent card (capabilities.extendedAgentCard is false)",
        )),
        other => Err(RpcError::new(
            ErrorCode::MethodNotFound,
            format!("method not found: {:?}", clip(other)),
        )),
    };
    (outcome, None)
}

/// At most 80 bytes of `s`, for messages that quote what a client sent.
pub(super) fn clip(s: &str) -> String {
    if s.len() <= 80 {
        return s.to_string();
    }
    let mut end = 80;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_strings_integers_or_null() {
        for ok in [
            json!(null),
            json!("x"),
            json!(7),
            json!(-7),
            json!(u64::MAX),
        ] {
            assert!(valid_id(&ok), "{ok}");
        }
        let huge: Value = serde_json::from_str("123456789012345678901234567890").unwrap();
        for bad in [
            json!(1.5),
            huge,
            json!(true),
            json!({}),
            json!([]),
            json!("x".repeat(257)),
        ] {
            assert!(!valid_id(&bad), "{bad}");
        }
    }

    #[test]
    fn versions_one_point_anything_are_accepted() {
        assert!(accepts_version("1.0") && accepts_version("1") && accepts_version(""));
        assert!(!accepts_version("0.3") && !accepts_version("2.0") && !accepts_version("10"));
    }
}
