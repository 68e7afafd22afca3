//! The A2A 1.0 data objects the gateway sends and reads, in the JSON form of
//! `specification/a2a.proto`: camelCase names, enum values by proto name,
//! unset and empty fields left out. Serialising these types gives exactly the
//! protocol's fields, nothing more, so a strict client accepts every answer.
//! Reading them ignores unknown fields, as the specification asks (section
//! 5.7), and re-serialising drops them, so nothing a client invents is echoed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `lf.a2a.v1.TaskState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    #[serde(rename = "TASK_STATE_UNSPECIFIED")]
    Unspecified,
    #[serde(rename = "TASK_STATE_SUBMITTED")]
    Submitted,
    #[serde(rename = "TASK_STATE_WORKING")]
    Working,
    #[serde(rename = "TASK_STATE_COMPLETED")]
    Completed,
    #[serde(rename = "TASK_STATE_FAILED")]
    Failed,
    #[serde(rename = "TASK_STATE_CANCELED")]
    Canceled,
    #[serde(rename = "TASK_STATE_INPUT_REQUIRED")]
    InputRequired,
    #[serde(rename = "TASK_STATE_REJECTED")]
    Rejected,
    #[serde(rename = "TASK_STATE_AUTH_REQUIRED")]
    AuthRequired,
}

impl TaskState {
    /// The proto name, as the JSON spells it (`TASK_STATE_COMPLETED`).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }
}

/// `lf.a2a.v1.Role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    #[serde(rename = "ROLE_UNSPECIFIED")]
    Unspecified,
    #[serde(rename = "ROLE_USER")]
    User,
    #[serde(rename = "ROLE_AGENT")]
    Agent,
}

/// `lf.a2a.v1.Part`: exactly one of `text`, `raw` (base64), `url` or `data`
/// (any JSON value), plus optional metadata, filename and media type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `google.protobuf.Value`: `null` is a value here, so a missing `data`
    /// and `"data": null` differ (see [`Part::content_count`]).
    #[serde(
        default,
        deserialize_with = "some_value",
        skip_serializing_if = "Option::is_none"
    )]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filename: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
}

fn some_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Part {
        Part {
            text: Some(text.into()),
            ..Part::default()
        }
    }

    /// A JSON data part (`application/json`).
    pub fn data(data: Value) -> Part {
        Part {
            data: Some(data),
            media_type: "application/json".to_string(),
            ..Part::default()
        }
    }

    /// How many of the oneof `content` members are set (valid: exactly one).
    pub fn content_count(&self) -> usize {
        usize::from(self.text.is_some())
            + usize::from(self.raw.is_some())
            + usize::from(self.url.is_some())
            + usize::from(self.data.is_some())
    }
}

/// `lf.a2a.v1.Message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub message_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub task_id: String,
    pub role: Role,
    pub parts: Vec<Part>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_task_ids: Vec<String>,
}

/// `lf.a2a.v1.Artifact`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub artifact_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub parts: Vec<Part>,
}

/// `lf.a2a.v1.TaskStatus`; `timestamp` is RFC 3339 UTC with milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    pub state: TaskState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    pub timestamp: String,
}

/// `lf.a2a.v1.Task`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub context_id: String,
    pub status: TaskStatus,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Artifact>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Message>,
}

impl Task {
    /// The task as a client asked for it: at most the last `history_length`
    /// messages of its history (`None`: all, `Some(0)`: none), and its
    /// artifacts only when `artifacts` is true.
    pub fn view(&self, history_length: Option<u32>, artifacts: bool) -> Task {
        let keep = history_length.map_or(self.history.len(), |n| n as usize);
        let skip = self.history.len().saturating_sub(keep);
        Task {
            id: self.id.clone(),
            context_id: self.context_id.clone(),
            status: self.status.clone(),
            artifacts: if artifacts {
                self.artifacts.clone()
            } else {
                Vec::new()
            },
            history: self.history[skip..].to_vec(),
        }
    }
}

/// `SendMessageRequest.configuration`, as far as the gateway reads it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendMessageConfiguration {
    #[serde(default)]
    pub history_length: Option<i64>,
    #[serde(default)]
    pub task_push_notification_config: Option<Value>,
}

/// `lf.a2a.v1.SendMessageRequest` (`tenant` and `metadata` are read and ignored).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendMessageRequest {
    pub message: Message,
    #[serde(default)]
    pub configuration: Option<SendMessageConfiguration>,
}

/// `lf.a2a.v1.GetTaskRequest`, also the shape of `CancelTaskRequest`'s `id`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTaskRequest {
    pub id: String,
    #[serde(default)]
    pub history_length: Option<i64>,
}

/// `lf.a2a.v1.ListTasksRequest` (`tenant` is read and ignored).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksRequest {
    #[serde(default)]
    pub context_id: String,
    #[serde(default)]
    pub status: Option<TaskState>,
    #[serde(default)]
    pub page_size: Option<i64>,
    #[serde(default)]
    pub page_token: String,
    #[serde(default)]
    pub history_length: Option<i64>,
    #[serde(default)]
    pub status_timestamp_after: Option<String>,
    #[serde(default)]
    pub include_artifacts: Option<bool>,
}

/// `lf.a2a.v1.ListTasksResponse`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksResponse {
    /// Each task's view, as [`super::tasks::Stored::view`] writes it.
    pub tasks: Vec<Box<serde_json::value::RawValue>>,
    pub next_page_token: String,
    pub page_size: u32,
    pub total_size: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_message_as_the_python_sdk_sends_it_reads_and_writes_back_without_extras() {
        // json_format.MessageToDict(Message(...)) of a2a-sdk 1.x.
        let sent = json!({
            "messageId": "m1", "role": "ROLE_USER", "contextId": "c1",
            "parts": [{"data": {"tenantId": "T"}, "mediaType": "application/json"},
                      {"text": "hi"}],
            "somethingNew": 1
        });
        let m: Message = serde_json::from_value(sent).unwrap();
        assert_eq!(m.role, Role::User);
        assert_eq!(m.parts[0].content_count(), 1);
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"messageId": "m1", "contextId": "c1", "role": "ROLE_USER",
                   "parts": [{"data": {"tenantId": "T"}, "mediaType": "application/json"},
                             {"text": "hi"}]})
        );
        let null_data: Part = serde_json::from_value(json!({"data": null})).unwrap();
        assert_eq!(null_data.content_count(), 1);
        assert!(serde_json::from_value::<Message>(
            json!({"messageId": "m", "role": "user", "parts": []})
        )
        .is_err());
    }

    #[test]
    fn history_length_keeps_the_most_recent_messages() {
        let msg = |id: &str| Message {
            message_id: id.into(),
            context_id: String::new(),
            task_id: String::new(),
            role: Role::User,
            parts: vec![Part::text("x")],
            metadata: None,
            extensions: vec![],
            reference_task_ids: vec![],
        };
        let task = Task {
            id: "t".into(),
            context_id: "c".into(),
            status: TaskStatus {
                state: TaskState::Completed,
                message: None,
                timestamp: "2026-01-01T00:00:00.000Z".into(),
            },
            artifacts: vec![],
            history: vec![msg("a"), msg("b"), msg("c")],
        };
        let ids = |t: Task| {
            t.history
                .into_iter()
                .map(|m| m.message_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(task.view(None, true)), ["a", "b", "c"]);
        assert_eq!(ids(task.view(Some(2), true)), ["b", "c"]);
        assert_eq!(ids(task.view(Some(9), true)), ["a", "b", "c"]);
        let none = task.view(Some(0), true);
        assert!(serde_json::to_value(&none)
            .unwrap()
            .get("history")
            .is_none());
    }
}
