//! The A2A agent gateway (issue 4): the seed's `mock/a2a_server.py` rebuilt
//! as a real, concurrent gateway with a Rego policy, and the client that probes
//! it and measures it.
//!
//! The module is split by concern: [`server`] is the HTTP gateway (hyper on a
//! tokio runtime of its own, so `golive` and tests run it in-process on an
//! ephemeral port and `cargo xtask a2a serve` runs the very same code),
//! [`policy`] wraps the Rego engine, and [`probe`] is the blocking `ureq` client
//! that checks one answer, drives a bounded load and turns both into a measured
//! SLO snapshot. This file holds what server and client must agree on: the
//! seed's example request and the provenance hash.
//!
//! # Provenance hash
//!
//! `provenance.hash` is the lowercase hex SHA-256 of the *canonical form* of
//! the response's `result`: compact JSON (no whitespace), object keys sorted by
//! their UTF-8 bytes (code point order) at every depth, array order kept,
//! strings escaped as `serde_json` does (only `"`, `\` and control characters;
//! other characters as raw UTF-8), numbers as `serde_json` prints them. In
//! Python the same bytes come from
//! `json.dumps(result, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`.
//! (The seed hashed Python's default `json.dumps`, whose key order is insertion
//! order; sorting keys makes the hash independent of how the JSON was built.)

pub mod faults;
pub mod metrics;
pub mod policy;
pub mod probe;
pub mod server;
pub mod v1;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

pub use policy::{Decision, Policy, PolicySource, DEFAULT_POLICY};
pub use probe::{load, measured_snapshot, probe, LoadResult, PolicyChecks, ProbeResult};
pub use server::{Gateway, GatewayOptions, DEFAULT_MAX_BODY};

/// The seed's Quickstart step 5 request body.
pub fn seed_request() -> serde_json::Value {
    serde_json::json!({
        "tenantId": "TENANT_001",
        "purpose": "investigation",
        "residency": "US",
        "pqid": "pq.getPersonById",
        "agent": "code-refactor",
        "task": {"repo": "svc-api", "goal": "add pagination"}
    })
}

/// The canonical form of `value` the provenance hash is computed over (see the
/// module documentation).
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out);
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Appends the canonical form of `value` to `out` (what [`canonical_json`]
/// returns), without an allocation per key or scalar.
pub fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).expect("a string serialises");
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("a scalar serialises"),
    }
}

/// `provenance.hash` for `result`: hex SHA-256 of [`canonical_json`].
pub fn provenance_hash(result: &serde_json::Value) -> String {
    crate::util::hex(&Sha256::digest(canonical_json(result).as_bytes()))
}

/// `cargo xtask a2a serve`: run the gateway until Ctrl-C (or SIGTERM).
pub fn run_serve(root: &Path, args: &crate::flags::ServeArgs) -> Result<u8> {
    let usage = |e| crate::util::fail(crate::util::exit::USAGE, e);
    let (faults, rest) = faults::split_degrade(&args.degrade).map_err(usage)?;
    if let Some(spec) = rest.first() {
        return Err(usage(anyhow::anyhow!(
            "--degrade {spec:?}: the gateway injects only {}=+MS and {}=+PCT",
            faults::LATENCY,
            faults::ERROR_RATE
        )));
    }
    let gateway = Gateway::start(GatewayOptions {
        addr: args.addr.clone(),
        policy: match &args.policy {
            Some(p) => PolicySource::File(root.join(p)),
            None => PolicySource::Default,
        },
        decision_log: args.decision_log.as_ref().map(|p| root.join(p)),
        max_body: args.max_body,
        workers: args.workers,
        faults,
        metrics: !args.no_metrics,
    })?;
    eprintln!(
        "a2a gateway listening on {} (policy {}{}{}); {}; Ctrl-C stops it",
        gateway.url(),
        gateway.policy_name(),
        match &args.decision_log {
            Some(p) => format!(", decision log {}", root.join(p).display()),
            None => String::new(),
        },
        if faults.is_none() {
            String::new()
        } else {
            format!(", injecting {:?}", faults.as_degrade())
        },
        if args.no_metrics {
            "no metrics".to_string()
        } else {
            format!("metrics at {}/metrics", gateway.url())
        }
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot start the signal handler")?;
    rt.block_on(wait_for_stop_signal())?;
    eprintln!("a2a gateway stopping");
    gateway.shutdown()?;
    Ok(crate::util::exit::OK)
}

async fn wait_for_stop_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        if let server::Either::Left(r) = server::race(tokio::signal::ctrl_c(), term.recv()).await {
            r.context("cannot listen for Ctrl-C")?;
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    Ok(())
}

/// The gateway `$A2A_URL` names (trimmed), when it is set and not empty: the
/// one place the kit reads that variable (`golive` and `a2a probe` use it).
pub fn url_from_env() -> Option<String> {
    std::env::var("A2A_URL")
        .ok()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
}

/// `cargo xtask a2a probe`: probe a gateway (`--url`, else `$A2A_URL`, else an
/// in-process one), optionally load it, print the result and write it to `--out`.
pub fn run_probe(root: &Path, args: &crate::flags::ProbeArgs) -> Result<u8> {
    let mut local = None;
    let url = match args.url.clone().or_else(url_from_env) {
        Some(url) => url,
        None => {
            let gateway = Gateway::start(GatewayOptions::default())?;
            let url = gateway.url();
            local = Some(gateway);
            url
        }
    };
    let probed = probe(&url)?;
    let output = if args.requests > 0 {
        let loaded = load(
            &url,
            args.requests,
            args.concurrency,
            Duration::from_secs(args.max_seconds),
        )?;
        if let Some(e) = &loaded.first_error {
            eprintln!(
                "xtask: {} of {} requests failed; first: {e}",
                loaded.errors, loaded.requests
            );
        }
        let snapshot = measured_snapshot(
            &probed,
            &loaded,
            &crate::util::version_from_env(),
            crate::util::now_epoch()?,
        );
        serde_json::to_value(snapshot).context("cannot serialise the snapshot")?
    } else {
        probed.to_json()
    };
    if let Some(gateway) = local {
        gateway.shutdown()?;
    }
    crate::util::println_stdout(
        &serde_json::to_string_pretty(&output).expect("a JSON value serialises"),
    )?;
    if let Some(out) = &args.out {
        crate::util::write_json(&root.join(out), &output)?;
    }
    Ok(crate::util::exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_sorts_keys_at_every_depth() {
        let v = json!({"b": [ {"z": 1, "a": "é\n"} ], "a": null});
        assert_eq!(canonical_json(&v), r#"{"a":null,"b":[{"a":"é\n","z":1}]}"#);
    }

    #[test]
    fn provenance_hash_matches_python_recipe() {
        // python3 -c 'import json,hashlib; print(hashlib.sha256(json.dumps(
        //   {"echoTask":{"repo":"svc-api","goal":"add pagination"},"policy":{"allow":True,"reasons":["x"]}},
        //   sort_keys=True, separators=(",",":"), ensure_ascii=False).encode()).hexdigest())'
        let result = json!({"echoTask": {"repo": "svc-api", "goal": "add pagination"},
                            "policy": {"allow": true, "reasons": ["x"]}});
        assert_eq!(
            canonical_json(&result),
            r#"{"echoTask":{"goal":"add pagination","repo":"svc-api"},"policy":{"allow":true,"reasons":["x"]}}"#
        );
        assert_eq!(
            provenance_hash(&result),
            "6e71257584e469aaaeaa646d3b90f7a2a6f4c5cf1ef65ffeb3ebe53acfef6af7"
        );
    }
}
