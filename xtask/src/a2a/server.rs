//! The gateway's HTTP server: `POST /a2a/perform` (the seed's endpoint, now
//! policy-checked), OPA's data API `POST /v1/data/<path>`, and `GET /health`;
//! A2A 1.0 (the agent card and JSON-RPC) is routed to [`super::v1`].
//!
//! It is hyper 1 (HTTP/1.1 with keep-alive) on a tokio multi-thread runtime
//! with one worker per core. The runtime is owned by a background thread that
//! [`Gateway::start`] spawns, so a synchronous caller (`golive`, a test, the
//! CLI) gets a running gateway on an ephemeral port and its URL back, and
//! [`Gateway::shutdown`] (or dropping the gateway) stops it: the listener
//! closes, idle keep-alive connections are closed, requests in flight get up to
//! two seconds to finish, and the decision log is flushed. A work-stealing
//! runtime fits the load: every request is a short piece of CPU work (parse,
//! evaluate Rego, hash, serialise) between socket reads, so two workers keep
//! both cores busy and thousands of idle connections cost only memory.
//!
//! Abuse handling is hyper's and this file's: request heads must arrive within
//! [`HEADER_READ_TIMEOUT`] (a slow or idle client holds only its own
//! connection), heads are bounded to [`MAX_HEAD`] bytes and 100 headers
//! (431), bodies are bounded by `max_body` (413, 1 MiB by default, checked against
//! `Content-Length` before reading and while reading chunked bodies) and must
//! arrive within [`BODY_READ_TIMEOUT`] (408). Every error the gateway answers
//! itself is a JSON body `{"ok": false, "error": "..."}` with its status; a
//! request hyper cannot parse (bad request line, bad header, bad framing) gets
//! hyper's bare 400 or 431 and that connection is closed, since its framing
//! can no longer be trusted. Either way the server goes on serving. A policy deny is `403` with the seed's full shape (so a client can
//! still check the provenance hash) plus `"ok": false` and an `"error"`.
//!
//! `GET /metrics` and fault injection wrap every request ([`observed`]); the
//! metrics and faults themselves live in their own modules.
//!
//! Every decision goes to the decision log as one JSON line (id, time, path,
//! input summary, allow, reasons; data-API lines carry `result` instead). The
//! lines are sent over a channel to one writer thread, so lines never
//! interleave however many workers decide at once, and the writer flushes
//! whenever the channel runs empty.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::faults::{Faults, Injected, Injector};
use super::metrics::{self, Decision, Metrics};
use super::policy::{self as rego, Policy, PolicySource};

mod log;
use log::DecisionLog;

/// The default request body limit: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;
/// A connection must deliver a complete request head within this time.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A request must deliver its complete body within this time.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head (request line and headers) accepted: 32 KiB.
pub const MAX_HEAD: usize = 32 * 1024;
/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The fields `/a2a/perform` requires besides `task` (an object).
const REQUIRED_STRINGS: [&str; 5] = ["tenantId", "purpose", "residency", "pqid", "agent"];

/// How to start a [`Gateway`].
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// Address to listen on; `127.0.0.1:0` picks a free port.
    pub addr: String,
    /// The Rego policy.
    pub policy: PolicySource,
    /// Append every decision to this JSON-lines file.
    pub decision_log: Option<PathBuf>,
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
    /// Runtime worker threads (default: one per core).
    pub workers: Option<usize>,
    /// Latency and errors to inject into `/a2a/perform` (a rehearsed bad release).
    pub faults: Faults,
    /// Keep Prometheus metrics and serve `GET /metrics` (default: yes).
    pub metrics: bool,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            addr: "127.0.0.1:0".to_string(),
            policy: PolicySource::Default,
            decision_log: None,
            max_body: DEFAULT_MAX_BODY,
            workers: None,
            faults: Faults::default(),
            metrics: true,
        }
    }
}

/// A running gateway. Dropping it shuts it down, as [`Gateway::shutdown`] does.
#[derive(Debug)]
pub struct Gateway {
    addr: SocketAddr,
    policy_name: String,
    stop: watch::Sender<bool>,
    server: Option<std::thread::JoinHandle<()>>,
    log_writer: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Gateway {
    /// Loads the policy, opens the decision log, binds the address and starts
    /// serving on a background thread. Errors (bad policy, address in use,
    /// unwritable log) are returned here, never later.
    pub fn start(opts: GatewayOptions) -> Result<Gateway> {
        let policy = Policy::load(&opts.policy)?;
        let policy_name = policy.name().to_string();
        let addr = resolve(&opts.addr)?;
        let (log, log_writer) = match &opts.decision_log {
            Some(path) => {
                let (log, writer) = DecisionLog::open(path)?;
                (Some(log), Some(writer))
            }
            None => (None, None),
        };
        let workers = opts.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("a2a-gateway")
            .enable_io()
            .enable_time()
            .build()
            .context("cannot start the gateway runtime")?;
        let listener = rt
            .block_on(async { listen(addr) })
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        let state = Arc::new(State {
            policy,
            log,
            v1: super::v1::Service::new(local),
            max_body: opts.max_body,
            next_id: AtomicU64::new(1),
            id_prefix: id_prefix(local),
            metrics: if opts.metrics {
                Metrics::new(&policy_name)
            } else {
                Metrics::off()
            },
            faults: Injector::new(opts.faults),
        });
        let (stop, stopped) = watch::channel(false);
        let server = std::thread::Builder::new()
            .name("a2a-gateway".to_string())
            .spawn(move || {
                rt.block_on(serve(listener, state, stopped));
                // Tasks still running after the grace period are dropped here.
                drop(rt);
            })
            .context("cannot start the gateway thread")?;
        Ok(Gateway {
            addr: local,
            policy_name,
            stop,
            server: Some(server),
            log_writer,
        })
    }

    /// The address the gateway listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The gateway's base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The name of the loaded policy (its file, or the built-in one).
    pub fn policy_name(&self) -> &str {
        &self.policy_name
    }

    /// Stops serving, waits for requests in flight (up to two seconds), and
    /// flushes the decision log; returns the log's write error if it had one.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<()> {
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
        match self.log_writer.take() {
            Some(writer) => writer
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the decision log writer panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

fn resolve(addr: &str) -> Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()
        .with_context(|| format!("bad listen address {addr:?} (expected HOST:PORT)"))?
        .next()
        .with_context(|| format!("listen address {addr:?} resolves to nothing"))
}

fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    // A deep accept queue: bursts of connections wait instead of overflowing.
    socket.listen(1024)
}

fn id_prefix(addr: SocketAddr) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mix = nanos ^ (u64::from(std::process::id()) << 32) ^ u64::from(addr.port());
    format!("{:012x}", mix & 0xffff_ffff_ffff)
}

pub(super) struct State {
    pub(super) policy: Policy,
    log: Option<DecisionLog>,
    /// A2A 1.0: the task store and the gateway's own address.
    pub(super) v1: super::v1::Service,
    max_body: usize,
    next_id: AtomicU64,
    id_prefix: String,
    pub(super) metrics: Metrics,
    faults: Injector,
}

impl State {
    pub(super) fn decision_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:08}", self.id_prefix)
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .max_buf_size(64 * 1024)
        .max_header_size(MAX_HEAD)
        .max_headers(100);
    // Each connection task holds a clone of `alive`; when all are gone the
    // receiver sees the channel close.
    let (alive, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
    loop {
        let stream = match race(stop.changed(), listener.accept()).await {
            Either::Left(_) => break,
            Either::Right(Ok((stream, _))) => stream,
            Either::Right(Err(_)) => {
                // Out of file descriptors or a connection reset before accept:
                // back off briefly rather than spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let mut stop = stop.clone();
        let alive = alive.clone();
        let http = http.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(observed(&state, req).await) }
            });
            let conn = http.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            if let Either::Right(_) = race(conn.as_mut(), stop.changed()).await {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
            drop(alive);
        });
    }
    drop(listener);
    drop(alive);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, all_closed.recv()).await;
}

/// Which of two futures finished first.
pub(super) enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Polls both futures and returns the first output (`a` wins a tie). A small
/// stand-in for `tokio::select!`, which would need tokio's proc-macro feature.
pub(super) async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        if let Poll::Ready(x) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(x));
        }
        Poll::Pending
    })
    .await
}

pub(super) type Reply = Response<Full<Bytes>>;

/// Serves one request as [`handle`] does, plus `GET /metrics` and the
/// injected faults, and counts it in the metrics (see [`metrics`]).
async fn observed(state: &State, req: Request<Incoming>) -> Reply {
    let started = Instant::now();
    let route = metrics::route(req.uri().path());
    let reply = if route == "/metrics" && req.method() == Method::GET && state.metrics.enabled() {
        state.metrics.reply()
    } else {
        let injected = state
            .faults
            .apply(route, req, state.max_body, BODY_READ_TIMEOUT);
        match injected.await {
            Injected::Serve(req) => handle(state, req).await,
            Injected::Answer(reply) => reply,
        }
    };
    let decision = reply.extensions().get::<Decision>().copied();
    state
        .metrics
        .observe(route, reply.status(), decision, started.elapsed());
    reply
}

async fn handle(state: &State, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_string();
    if path == "/a2a/perform" {
        if req.method() != Method::POST {
            return method_not_allowed("POST");
        }
        match read_body(state, req).await {
            Ok(body) => perform(state, &body),
            Err(refusal) => refusal.reply(),
        }
    } else if path == "/v1/data" || path.starts_with("/v1/data/") {
        if req.method() != Method::POST {
            return method_not_allowed("POST");
        }
        match read_body(state, req).await {
            Ok(body) => data_api(state, &path, &body),
            Err(refusal) => refusal.reply(),
        }
    } else if super::v1::serves(&path) {
        super::v1::handle(state, req).await
    } else if path == "/health" {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return method_not_allowed("GET, HEAD");
        }
        json_reply(
            StatusCode::OK,
            &json!({"ok": true, "policy": state.policy.name(), "memo": state.policy.memo_stats()}),
        )
    } else {
        error_reply(
            StatusCode::NOT_FOUND,
            &format!("no such endpoint: {}", clip(&path)),
        )
    }
}

/// A request the gateway refuses: its status and message.
pub(super) struct Refusal(StatusCode, String);

impl Refusal {
    pub(super) fn reply(self) -> Reply {
        error_reply(self.0, &self.1)
    }
}

pub(super) async fn read_body(state: &State, req: Request<Incoming>) -> Result<Bytes, Refusal> {
    let too_large = || {
        Refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {} bytes", state.max_body),
        )
    };
    if let Some(len) = req.headers().get(CONTENT_LENGTH) {
        // hyper has already refused a malformed or conflicting Content-Length.
        let len = len.to_str().ok().and_then(|s| s.parse::<u64>().ok());
        if len.is_some_and(|n| n > state.max_body as u64) {
            return Err(too_large());
        }
    }
    let limited = Limited::new(req.into_body(), state.max_body);
    match tokio::time::timeout(BODY_READ_TIMEOUT, limited.collect()).await {
        Err(_) => Err(Refusal(
            StatusCode::REQUEST_TIMEOUT,
            "request body did not arrive in time".to_string(),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(Refusal(
            StatusCode::BAD_REQUEST,
            format!("cannot read request body: {e}"),
        )),
    }
}

fn parse_json(body: &[u8]) -> Result<Value, Refusal> {
    let text = std::str::from_utf8(body).map_err(|e| {
        Refusal(
            StatusCode::BAD_REQUEST,
            format!("request body is not valid UTF-8: {e}"),
        )
    })?;
    serde_json::from_str(text)
        .map_err(|e| Refusal(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")))
}

fn perform(state: &State, body: &[u8]) -> Reply {
    let input = match parse_json(body) {
        Ok(v) => v,
        Err(refusal) => return refusal.reply(),
    };
    if let Err(msg) = check_perform_input(&input) {
        return error_reply(StatusCode::BAD_REQUEST, &msg);
    }
    let id = state.decision_id();
    let evaluating = Instant::now();
    let decided = state.policy.decide_keyed(body, &input);
    state.metrics.observe_policy(evaluating.elapsed());
    let decision = match decided {
        Ok(d) => d,
        Err(e) => {
            let msg = format!("policy error: {e:#}");
            state.log_line(
                &id,
                "/a2a/perform",
                &input,
                json!({"allow": false, "reasons": [msg]}),
            );
            return error_reply(StatusCode::INTERNAL_SERVER_ERROR, &msg);
        }
    };
    state.log_decision(&id, "/a2a/perform", &input, &decision);
    // The answer is written directly rather than built as a `Value`: this is
    // the hot path. `result` is `{"echoTask": task, "policy": decision}`; its
    // canonical form puts the task in canonical form and the decision's JSON,
    // which is canonical already, after it ("echoTask" < "policy").
    let task = &input["task"];
    let mut hasher = Sha256::new();
    hasher.update(b"{\"echoTask\":");
    hasher.update(super::canonical_json(task).as_bytes());
    hasher.update(b",\"policy\":");
    hasher.update(decision.json().as_bytes());
    hasher.update(b"}");
    let hash = crate::util::hex(&hasher.finalize());
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());

    let mut out = Vec::with_capacity(256 + body.len());
    if decision.allow {
        out.extend_from_slice(b"{\"ok\":true,\"result\":{\"echoTask\":");
    } else {
        let error = format!("denied by policy: {}", decision.reasons.join("; "));
        out.extend_from_slice(b"{\"ok\":false,\"error\":");
        serde_json::to_writer(&mut out, &error).expect("a string serialises");
        out.extend_from_slice(b",\"result\":{\"echoTask\":");
    }
    serde_json::to_writer(&mut out, task).expect("a JSON value serialises");
    out.extend_from_slice(b",\"policy\":");
    out.extend_from_slice(decision.json().as_bytes());
    out.extend_from_slice(b"},\"provenance\":{\"hash\":\"");
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(format!("\",\"time\":{time}}}}}").as_bytes());
    let (status, label) = if decision.allow {
        (StatusCode::OK, Decision::Allow)
    } else {
        (StatusCode::FORBIDDEN, Decision::Deny)
    };
    let mut reply = bytes_reply(status, out);
    reply.extensions_mut().insert(label);
    reply
}

pub(super) fn check_perform_input(input: &Value) -> Result<(), String> {
    let Some(obj) = input.as_object() else {
        return Err("request body must be a JSON object".to_string());
    };
    let missing: Vec<&str> = REQUIRED_STRINGS
        .iter()
        .copied()
        .filter(|k| !obj.get(*k).is_some_and(Value::is_string))
        .chain((!obj.get("task").is_some_and(Value::is_object)).then_some("task"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "missing or mistyped fields: {} (tenantId, purpose, residency, pqid and agent are strings; task is an object)",
            missing.join(", ")
        ))
    }
}

fn data_api(state: &State, path: &str, body: &[u8]) -> Reply {
    let rest = path["/v1/data".len()..].trim_matches('/');
    let mut reference = String::from("data");
    for seg in rest.split('/').filter(|s| !s.is_empty()) {
        let ident = seg
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ident {
            return error_reply(
                StatusCode::BAD_REQUEST,
                &format!("bad data path segment {:?}", clip(seg)),
            );
        }
        reference.push('.');
        reference.push_str(seg);
    }
    let input = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match parse_json(body) {
            Ok(Value::Object(mut obj)) => obj.remove("input"),
            Ok(_) => {
                return error_reply(
                    StatusCode::BAD_REQUEST,
                    "request body must be a JSON object like {\"input\": ...}",
                )
            }
            Err(refusal) => return refusal.reply(),
        }
    };
    let id = state.decision_id();
    let null = Value::Null;
    let evaluating = Instant::now();
    let queried = state.policy.query(&reference, input.as_ref());
    state.metrics.observe_policy(evaluating.elapsed());
    match queried {
        Ok(result) => {
            state.log_line(
                &id,
                path,
                input.as_ref().unwrap_or(&null),
                json!({"result": result}),
            );
            let mut answer = serde_json::Map::new();
            if let Some(result) = result {
                answer.insert("result".to_string(), result);
            }
            answer.insert("decision_id".to_string(), Value::String(id));
            json_reply(StatusCode::OK, &Value::Object(answer))
        }
        Err(e) => error_reply(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")),
    }
}

impl State {
    pub(super) fn log_line(&self, id: &str, path: &str, input: &Value, outcome: Value) {
        let Some(log) = &self.log else { return };
        let summary: serde_json::Map<String, Value> = REQUIRED_STRINGS
            .iter()
            .filter_map(|k| input.get(*k).map(|v| ((*k).to_string(), v.clone())))
            .collect();
        let mut line = serde_json::Map::new();
        line.insert("id".to_string(), json!(id));
        line.insert("time".to_string(), json!(now_rfc3339_millis()));
        line.insert("path".to_string(), json!(path));
        line.insert("input".to_string(), Value::Object(summary));
        if let Value::Object(outcome) = outcome {
            line.extend(outcome);
        }
        let mut text = serde_json::to_vec(&line).expect("a JSON value serialises");
        text.push(b'\n');
        log.send(&text);
    }

    /// [`State::log_line`] for a decision of the policy, written directly
    /// (the same bytes as `log_line` with `{"allow", "reasons"}`): this is
    /// the hot path.
    fn log_decision(&self, id: &str, path: &str, input: &Value, decision: &rego::Decision) {
        self.log_decision_with(id, path, input, &[], decision);
    }

    /// [`State::log_decision`] with string members written between `input`
    /// and the decision (`SendMessage` names its method and task), as
    /// `log_line` orders them.
    pub(super) fn log_decision_with(
        &self,
        id: &str,
        path: &str,
        input: &Value,
        extra: &[(&str, &str)],
        decision: &rego::Decision,
    ) {
        let Some(log) = &self.log else { return };
        let mut line = Vec::with_capacity(320);
        line.extend_from_slice(b"{\"id\":");
        serde_json::to_writer(&mut line, id).expect("a string serialises");
        line.extend_from_slice(b",\"time\":\"");
        line.extend_from_slice(now_rfc3339_millis().as_bytes());
        line.extend_from_slice(b"\",\"path\":");
        serde_json::to_writer(&mut line, path).expect("a string serialises");
        line.extend_from_slice(b",\"input\":{");
        let mut first = true;
        for k in REQUIRED_STRINGS {
            if let Some(v) = input.get(k) {
                if !first {
                    line.push(b',');
                }
                first = false;
                line.push(b'"');
                line.extend_from_slice(k.as_bytes());
                line.extend_from_slice(b"\":");
                serde_json::to_writer(&mut line, v).expect("a JSON value serialises");
            }
        }
        line.extend_from_slice(b"},");
        for (k, v) in extra {
            serde_json::to_writer(&mut line, k).expect("a string serialises");
            line.push(b':');
            serde_json::to_writer(&mut line, v).expect("a string serialises");
            line.push(b',');
        }
        // The decision's JSON is `{"allow":..,"reasons":[..]}`: its members
        // end the line's object.
        line.extend_from_slice(&decision.json().as_bytes()[1..]);
        line.push(b'\n');
        log.send(&line);
    }
}

fn now_rfc3339_millis() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = crate::util::rfc3339(now.as_secs());
    // `...Z` → `....mmmZ`
    format!("{}.{:03}Z", &secs[..secs.len() - 1], now.subsec_millis())
}

fn clip(s: &str) -> String {
    if s.len() <= 80 {
        return s.to_string();
    }
    let mut end = 80;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

fn json_reply(status: StatusCode, body: &Value) -> Reply {
    bytes_reply(
        status,
        serde_json::to_vec(body).expect("a JSON value serialises"),
    )
}

pub(super) fn bytes_reply(status: StatusCode, bytes: Vec<u8>) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(bytes)));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    reply
}

fn error_reply(status: StatusCode, error: &str) -> Reply {
    json_reply(status, &json!({"ok": false, "error": error}))
}

pub(super) fn method_not_allowed(allow: &'static str) -> Reply {
    let mut reply = error_reply(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("method not allowed; use {allow}"),
    );
    reply
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    reply
}
