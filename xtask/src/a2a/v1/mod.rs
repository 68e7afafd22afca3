//! A2A 1.0 beside the seed's `POST /a2a/perform` (issue 13): the agent card at
//! [`CARD_PATH`] and JSON-RPC 2.0 at [`RPC_PATH`], so the protocol's own
//! clients (the official Python SDK `a2a-sdk` 1.x among them) can rehearse
//! against the gateway.
//!
//! The shapes follow the normative `specification/a2a.proto` of
//! a2aproject/A2A (package `lf.a2a.v1`) in its JSON form, which is what the SDK
//! sends and parses (`google.protobuf.json_format`): camelCase field names,
//! enum values by their proto names (`TASK_STATE_COMPLETED`, `ROLE_AGENT`),
//! a `Part` as a oneof (`{"text": ...}`, `{"data": ...}`, `{"url": ...}`,
//! `{"raw": ...}`, no `kind`), empty lists and unset fields left out. (0.3
//! and the 1.0 drafts spelt enums in kebab-case, `completed`, and gave parts
//! a `kind`; released 1.0 and the SDK use the proto names, and so do we.)
//!
//! The module is split by concern: [`types`] holds the protocol's data
//! objects, [`card`] the agent card, [`tasks`] the bounded task store,
//! [`jsonrpc`] the envelope and the error codes, and `methods` the methods.
//! The gateway's HTTP server only routes the two paths here; body limits,
//! timeouts and the handling of requests hyper cannot parse are the
//! server's, unchanged. Every
//! `SendMessage` is judged by the same Rego policy as `/a2a/perform` and
//! written to the same decision log. [`probe`] is the client side: the
//! checks `a2a probe` and golive run against the gateway, or any A2A 1.0
//! agent.

pub mod card;
pub mod jsonrpc;
mod methods;
pub mod probe;
pub mod tasks;
pub mod types;

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::{Method, Request};

use super::server::{read_body, Reply, State};

/// Where the agent card is served (the protocol's well-known path).
pub const CARD_PATH: &str = "/.well-known/agent-card.json";
/// The JSON-RPC interface URL's path, as the card announces it.
pub const RPC_PATH: &str = "/a2a/v1";
/// The protocol version this gateway speaks.
pub const PROTOCOL_VERSION: &str = "1.0";

/// What the gateway keeps for A2A 1.0: the task store, and its own address
/// for a card asked for without a usable `Host` header.
#[derive(Debug)]
pub struct Service {
    pub(crate) tasks: tasks::TaskStore,
    local: SocketAddr,
}

impl Service {
    pub fn new(local: SocketAddr) -> Service {
        Service {
            tasks: tasks::TaskStore::new(tasks::MAX_TASKS, tasks::MAX_BYTES),
            local,
        }
    }
}

/// Whether `path` is one of this module's.
pub fn serves(path: &str) -> bool {
    path == CARD_PATH || path == RPC_PATH
}

/// Answers a request for [`CARD_PATH`] or [`RPC_PATH`].
pub(in crate::a2a) async fn handle(state: &State, req: Request<Incoming>) -> Reply {
    if req.uri().path() == CARD_PATH {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return super::server::method_not_allowed("GET, HEAD");
        }
        let base = base_url(&state.v1, req.headers().get(HOST));
        return card::reply(&base);
    }
    if req.method() != Method::POST {
        return super::server::method_not_allowed("POST");
    }
    let version = req
        .headers()
        .get(jsonrpc::VERSION_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match read_body(state, req).await {
        Ok(body) => jsonrpc::reply(state, version.as_deref(), &body),
        Err(refusal) => refusal.reply(),
    }
}

/// `http://<authority>`: the `Host` the client used when it is a plain
/// host[:port] (so the card names the address the client reached, whatever
/// `--addr` or the ephemeral port), else the gateway's own address.
fn base_url(service: &Service, host: Option<&hyper::header::HeaderValue>) -> String {
    let usable = |h: &&str| {
        !h.is_empty()
            && h.len() <= 262
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
    };
    match host.and_then(|h| h.to_str().ok()).filter(usable) {
        Some(h) => format!("http://{h}"),
        None => format!("http://{}", service.local),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn the_card_names_the_host_the_client_used_else_the_listen_address() {
        let s = Service::new("127.0.0.1:4711".parse().unwrap());
        let h = HeaderValue::from_static("gateway.internal:8080");
        assert_eq!(base_url(&s, Some(&h)), "http://gateway.internal:8080");
        let v6 = HeaderValue::from_static("[::1]:9");
        assert_eq!(base_url(&s, Some(&v6)), "http://[::1]:9");
        for bad in ["evil.example/x?", "a b", "", "x@y"] {
            let h = HeaderValue::from_str(bad).unwrap();
            assert_eq!(base_url(&s, Some(&h)), "http://127.0.0.1:4711", "{bad:?}");
        }
        assert_eq!(base_url(&s, None), "http://127.0.0.1:4711");
    }
}
