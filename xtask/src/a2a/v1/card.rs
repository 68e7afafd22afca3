//! The gateway's A2A 1.0 agent card (`lf.a2a.v1.AgentCard`): who the agent
//! is, the one JSON-RPC interface it offers, what it cannot do (no streaming,
//! no push notifications, no extended card) and the one skill it has, the
//! policy-governed action of `/a2a/perform`.
//!
//! The interface URL is built from the base URL the client used (see
//! [`super::handle`]), so a card fetched through `127.0.0.1:<ephemeral port>`,
//! a `--addr` or a name in front of the gateway points back the same way.

use serde::Serialize;
use serde_json::json;

use super::{PROTOCOL_VERSION, RPC_PATH};
use crate::a2a::server::{bytes_reply, Reply};

/// `lf.a2a.v1.AgentCard`, the fields this gateway sets.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentCard {
    pub name: String,
    pub description: String,
    pub supported_interfaces: Vec<AgentInterface>,
    pub version: String,
    pub capabilities: AgentCapabilities,
    pub default_input_modes: Vec<String>,
    pub default_output_modes: Vec<String>,
    pub skills: Vec<AgentSkill>,
}

/// `lf.a2a.v1.AgentInterface`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentInterface {
    pub url: String,
    pub protocol_binding: String,
    pub protocol_version: String,
}

/// `lf.a2a.v1.AgentCapabilities`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentCapabilities {
    pub streaming: bool,
    pub push_notifications: bool,
    pub extended_agent_card: bool,
}

/// `lf.a2a.v1.AgentSkill`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentSkill {
    pub id: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub examples: Vec<String>,
    pub input_modes: Vec<String>,
    pub output_modes: Vec<String>,
}

/// The skill's id: what the gateway does for a message.
pub const SKILL_ID: &str = "governed-perform";

/// The card for a gateway reached at `base` (`http://host:port`).
pub fn agent_card(base: &str) -> AgentCard {
    let json_mode = || vec!["application/json".to_string()];
    AgentCard {
        name: "MC go-live A2A gateway".to_string(),
        description: "The MC go-live kit's policy-governed agent gateway: every message is \
                      judged by the gateway's Rego policy (data.a2a.decision) and answered \
                      with a completed or rejected task."
            .to_string(),
        supported_interfaces: vec![AgentInterface {
            url: format!("{base}{RPC_PATH}"),
            protocol_binding: "JSONRPC".to_string(),
            protocol_version: PROTOCOL_VERSION.to_string(),
        }],
        version: env!("CARGO_PKG_VERSION").to_string(),
        capabilities: AgentCapabilities {
            streaming: false,
            push_notifications: false,
            extended_agent_card: false,
        },
        default_input_modes: json_mode(),
        default_output_modes: vec!["application/json".to_string(), "text/plain".to_string()],
        skills: vec![AgentSkill {
            id: SKILL_ID.to_string(),
            name: "Governed perform".to_string(),
            description: "Send one data part with the seed's request fields (tenantId, \
                          purpose, residency, pqid, agent: strings; task: object). Allowed by \
                          the policy: a TASK_STATE_COMPLETED task whose artifact holds the \
                          result (echoTask, policy) and its provenance hash. Denied: a \
                          TASK_STATE_REJECTED task whose status message gives the reasons."
                .to_string(),
            tags: ["policy", "rego", "governance", "go-live"]
                .map(String::from)
                .to_vec(),
            examples: vec![json!({"data": crate::a2a::seed_request()}).to_string()],
            input_modes: json_mode(),
            output_modes: json_mode(),
        }],
    }
}

/// `200` with the card for `base`.
pub fn reply(base: &str) -> Reply {
    let body = serde_json::to_vec(&agent_card(base)).expect("a card serialises");
    bytes_reply(hyper::StatusCode::OK, body)
}
