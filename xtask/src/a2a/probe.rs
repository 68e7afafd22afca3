//! The gateway's client: [`probe`] sends the seed's Quickstart step 5 request
//! and two requests the policy must deny, checks every answer's shape and
//! recomputes its provenance hash; [`load`] drives a bounded load and measures
//! latency; [`measured_snapshot`] turns both into the SLO snapshot format
//! (`"source": "measured"`) that the gates read.
//!
//! It is blocking `ureq` on plain threads because the kit's callers are
//! synchronous and the load is small: each load worker owns one `ureq` agent,
//! so it keeps one keep-alive connection, as a real client would, and latency
//! is measured per request around send-and-read-body. A load is bounded both in
//! count and in time, and goes only to the URL it is given.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::{json, Value};

use super::{provenance_hash, seed_request};
use crate::slo::{self, round3, Snapshot, Source};

/// Per-request timeout of the probe and the load.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the policy checks of a probe found: `true` when the gateway enforced
/// the rule (denied the request that breaks it: a residency the tenant may not
/// use, a `pqid` off the persisted-query allowlist). It is the snapshot's
/// [`slo::Policy`], which the gates read.
pub type PolicyChecks = slo::Policy;

/// One checked answer of the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Round-trip time in milliseconds.
    pub latency_ms: f64,
    /// `result.policy.allow`.
    pub allow: bool,
    /// `result.policy.reasons`.
    pub reasons: Vec<String>,
    /// `provenance.hash`, recomputed and found equal.
    pub hash: String,
}

/// What [`probe`] found.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    /// The endpoint probed (`<base>/a2a/perform`).
    pub url: String,
    /// The answer to the seed's example request.
    pub example: Answer,
    /// The example request's whole response body.
    pub response: Value,
    /// Whether the gateway enforced the residency and persisted-query rules.
    pub policy: slo::Policy,
    /// The answers to the residency and pqid requests.
    pub checks: ProbeChecks,
    /// The A2A 1.0 checks (card, allowed and denied `SendMessage`, `GetTask`);
    /// `null` when the gateway serves no agent card.
    pub a2a_v1: Option<super::v1::probe::V1Probe>,
}

/// The answers to the requests the policy must deny.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeChecks {
    pub residency: Answer,
    pub pqid: Answer,
}

impl ProbeResult {
    /// The result as JSON: `{"url", "example", "response", "policy", "checks", "a2a_v1"}`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a probe result serialises")
    }
}

/// What [`load`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    /// Requests sent (complete or failed).
    pub requests: u64,
    /// Requests that failed: transport error, or a status other than 200.
    pub errors: u64,
    /// Percent of requests that succeeded.
    pub availability: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Wall time of the load in seconds.
    pub elapsed_s: f64,
    /// Requests per second.
    pub rps: f64,
    /// The first failure, if any.
    pub first_error: Option<String>,
}

/// `<base>/a2a/perform`, after checking the base URL.
pub fn perform_url(base: &str) -> Result<String> {
    let base = base.trim().trim_end_matches('/');
    if base.starts_with("https://") {
        bail!("{base}: https is not supported by the probe (the kit is built without TLS); use an http:// URL");
    }
    if !base.starts_with("http://") {
        bail!("{base:?} is not an http:// URL");
    }
    let url = format!("{base}/a2a/perform");
    url.parse::<ureq::http::Uri>()
        .ok()
        .filter(|u| u.host().is_some_and(|h| !h.is_empty()))
        .with_context(|| format!("{base:?} is not a valid URL"))?;
    Ok(url)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .max_idle_connections_per_host(1)
        .build()
        .into()
}

/// Sends the seed's example request to `<base>/a2a/perform`, plus a request
/// with a residency the tenant may not use and one with a non-allowlisted
/// `pqid`. Fails (one-line error) when the gateway cannot be reached, answers
/// with the wrong shape, or its provenance hash does not recompute.
pub fn probe(base: &str) -> Result<ProbeResult> {
    let url = perform_url(base)?;
    let agent = agent();
    if let Some(interface) = super::v1::probe::a2a_only(&agent, base)? {
        return super::v1::probe::seed_probe(&agent, base, &interface);
    }
    let example_req = seed_request();
    let (example, response) = ask(&agent, &url, &example_req)?;

    let mut residency_req = seed_request();
    residency_req["residency"] = json!("EU");
    let (residency, _) = ask(&agent, &url, &residency_req).context("residency check")?;

    let mut pqid_req = seed_request();
    pqid_req["pqid"] = json!("pq.adHocQuery");
    let (pqid, _) = ask(&agent, &url, &pqid_req).context("persisted-query check")?;
    let a2a_v1 = super::v1::probe::probe(&agent, base).context("A2A 1.0 check")?;

    Ok(ProbeResult {
        url,
        policy: slo::Policy {
            residency_pass: example.allow && !residency.allow,
            persisted_only: example.allow && !pqid.allow,
        },
        example,
        response,
        checks: ProbeChecks { residency, pqid },
        a2a_v1,
    })
}

/// Sends `request` and checks the answer's shape and hash.
fn ask(agent: &ureq::Agent, url: &str, request: &Value) -> Result<(Answer, Value)> {
    let body = serde_json::to_vec(request).expect("a JSON value serialises");
    let started = Instant::now();
    let mut resp = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(&body[..])
        .with_context(|| format!("cannot reach {url}"))?;
    let text = resp
        .body_mut()
        .read_to_string()
        .with_context(|| format!("cannot read the answer of {url}"))?;
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    let status = resp.status().as_u16();
    let (allow, reasons, hash, response) = check_answer(status, &text, &request["task"])
        .with_context(|| format!("{url} answered HTTP {status}"))?;
    Ok((
        Answer {
            status,
            latency_ms: round3(latency_ms),
            allow,
            reasons,
            hash,
        },
        response,
    ))
}

/// Checks one answer: the seed's shape, the echoed task, and the hash.
pub fn check_answer(
    status: u16,
    text: &str,
    task: &Value,
) -> Result<(bool, Vec<String>, String, Value)> {
    let response: Value = serde_json::from_str(text).map_err(|e| {
        let snippet: String = text.chars().take(120).collect();
        anyhow::anyhow!("the answer is not JSON ({e}): {snippet:?}")
    })?;
    if status != 200 && status != 403 {
        let error = response["error"].as_str().unwrap_or("no error message");
        bail!("unexpected status (want 200, or 403 for a deny): {error}");
    }
    let shape = |what: &str| anyhow::anyhow!("wrong shape: {what}");
    let ok = response["ok"]
        .as_bool()
        .ok_or_else(|| shape("`ok` is not a boolean"))?;
    let result = response
        .get("result")
        .filter(|r| r.is_object())
        .ok_or_else(|| shape("no `result` object"))?;
    if result.get("echoTask") != Some(task) {
        return Err(shape("`result.echoTask` is not the task sent"));
    }
    let allow = result["policy"]["allow"]
        .as_bool()
        .ok_or_else(|| shape("`result.policy.allow` is not a boolean"))?;
    let reasons = result["policy"]["reasons"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .map(|r| r.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| shape("`result.policy.reasons` is not an array of strings"))?;
    if ok != allow || (status == 200) != allow {
        return Err(shape("`ok`, the status and `result.policy.allow` disagree"));
    }
    let hash = response["provenance"]["hash"]
        .as_str()
        .ok_or_else(|| shape("no `provenance.hash` string"))?;
    if !response["provenance"]["time"].is_u64() {
        return Err(shape("`provenance.time` is not a whole number of seconds"));
    }
    let recomputed = provenance_hash(result);
    if hash != recomputed {
        bail!("wrong provenance hash: the gateway sent {hash}, the result hashes to {recomputed}");
    }
    Ok((allow, reasons, recomputed, response))
}

/// Sends the seed's example request `requests` times over `concurrency`
/// keep-alive connections, stopping early after `max_duration`. A request
/// counts as an error on a transport failure or a status other than 200. An
/// agent that speaks only A2A 1.0 gets the request as a JSON-RPC
/// `SendMessage`, where an answer without a `result` is an error too.
pub fn load(
    base: &str,
    requests: u64,
    concurrency: u64,
    max_duration: Duration,
) -> Result<LoadResult> {
    let url = perform_url(base)?;
    if requests == 0 {
        bail!("a load needs at least one request");
    }
    if concurrency == 0 {
        bail!("a load needs a concurrency of at least 1");
    }
    let workers = concurrency.min(requests).min(1024);
    let (url, request, rpc) = match super::v1::probe::a2a_only(&agent(), base)? {
        Some(interface) => (
            interface,
            super::v1::probe::send_message_body(&seed_request()),
            true,
        ),
        None => (url, seed_request(), false),
    };
    let body: Arc<[u8]> = serde_json::to_vec(&request).expect("serialises").into();
    let remaining = Arc::new(AtomicU64::new(requests));
    let started = Instant::now();
    let deadline = started + max_duration;
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (url, body, remaining) = (url.clone(), body.clone(), remaining.clone());
            std::thread::spawn(move || worker(&url, &body, rpc, &remaining, deadline))
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests.min(1 << 20) as usize);
    let mut errors = 0;
    let mut first_error = None;
    for h in handles {
        let w = h
            .join()
            .map_err(|_| anyhow::anyhow!("a load worker panicked"))?;
        latencies.extend(w.latencies);
        errors += w.errors;
        if first_error.is_none() {
            first_error = w.first_error;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let count = latencies.len() as u64;
    latencies.sort_unstable_by(f64::total_cmp);
    Ok(LoadResult {
        requests: count,
        errors,
        availability: if count == 0 {
            0.0
        } else {
            round3(100.0 * (count - errors) as f64 / count as f64)
        },
        p50_ms: round3(percentile(&latencies, 50.0)),
        p95_ms: round3(percentile(&latencies, 95.0)),
        p99_ms: round3(percentile(&latencies, 99.0)),
        elapsed_s: round3(elapsed),
        rps: if elapsed > 0.0 {
            (count as f64 / elapsed).round()
        } else {
            0.0
        },
        first_error,
    })
}

struct WorkerResult {
    latencies: Vec<f64>,
    errors: u64,
    first_error: Option<String>,
}

fn worker(
    url: &str,
    body: &[u8],
    rpc: bool,
    remaining: &AtomicU64,
    deadline: Instant,
) -> WorkerResult {
    let agent = agent();
    let mut out = WorkerResult {
        latencies: Vec::new(),
        errors: 0,
        first_error: None,
    };
    while Instant::now() < deadline
        && remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    {
        let started = Instant::now();
        let outcome = agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body)
            .map_err(|e| e.to_string())
            .and_then(|mut resp| {
                let status = resp.status().as_u16();
                let answer = resp.body_mut().read_to_vec().map_err(|e| e.to_string())?;
                if status != 200 {
                    Err(format!("HTTP {status}"))
                } else if rpc && !super::v1::probe::load_answer_ok(&answer) {
                    Err("a JSON-RPC answer without a result".to_string())
                } else {
                    Ok(())
                }
            });
        out.latencies.push(started.elapsed().as_secs_f64() * 1e3);
        if let Err(e) = outcome {
            out.errors += 1;
            out.first_error.get_or_insert(e);
        }
    }
    out
}

/// Nearest-rank percentile of sorted values (0 when there are none).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A measured SLO snapshot from a probe and a load:
/// `{"version", "capturedAt", "source": "measured", "endpoints": {"A2A.perform.p50_ms", ...p95, ...p99},
/// "availability", "requests", "errors", "policy": {"residency_pass", "persisted_only"}}`.
pub fn measured_snapshot(
    probe: &ProbeResult,
    load: &LoadResult,
    version: &str,
    captured_at: u64,
) -> Snapshot {
    let mut snap = Snapshot::new(version, captured_at, Source::Measured);
    for (metric, value) in [
        ("A2A.perform.p50_ms", load.p50_ms),
        ("A2A.perform.p95_ms", load.p95_ms),
        ("A2A.perform.p99_ms", load.p99_ms),
    ] {
        snap.set_metric(metric, value);
    }
    snap.availability = Some(load.availability);
    snap.requests = Some(load.requests);
    snap.errors = Some(load.errors);
    snap.policy = Some(probe.policy);
    snap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[3.0], 95.0), 3.0);
        assert_eq!(percentile(&[], 95.0), 0.0);
    }

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            perform_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080/a2a/perform"
        );
        assert!(perform_url("127.0.0.1:8080").is_err());
        assert!(perform_url("https://x").is_err());
        assert!(perform_url("http://").is_err());
    }
}
