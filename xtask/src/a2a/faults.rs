//! Fault injection: a bad release rehearsed on the real gateway rather than
//! on shifted numbers. `--degrade A2A.perform.p95_ms=+1200` makes every
//! `POST /a2a/perform` wait 1.2 s before it is answered, and `--degrade
//! A2A.error_rate=+20` answers 20 % of them with `503`; what monitoring then
//! measures (the probe, the gateway's own `/metrics`, Prometheus) is what a
//! real slow or failing release would show.
//!
//! The error share is exact, not random: request *n* fails when
//! `floor(n * p)` steps up, so 20 % fails every fifth request and any window
//! of requests sees the share within one request.
//! The faults only touch `/a2a/perform`: `/metrics` and `/health` keep
//! answering, as a degraded service's monitoring endpoints do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{bail, Result};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};

use crate::slo::Degrade;

/// The degrade metric that injects latency, in milliseconds.
pub const LATENCY: &str = "A2A.perform.p95_ms";
/// The degrade metric that injects `503` answers, in percent of requests.
pub const ERROR_RATE: &str = "A2A.error_rate";
/// The longest latency that can be injected: one minute.
pub const MAX_LATENCY_MS: f64 = 60_000.0;

/// The faults a gateway injects into `POST /a2a/perform`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Added to every answer.
    pub latency: Duration,
    /// Share of answers replaced by `503`, in percent (0 to 100).
    pub error_pct: f64,
}

impl Faults {
    /// Whether nothing is injected.
    pub fn is_none(&self) -> bool {
        self.latency.is_zero() && self.error_pct == 0.0
    }

    /// The faults as degrade shifts, for the record (`degraded` of a snapshot).
    pub fn as_degrade(&self) -> Degrade {
        let mut out = Degrade::new();
        if !self.latency.is_zero() {
            out.insert(LATENCY.to_string(), self.latency.as_secs_f64() * 1000.0);
        }
        if self.error_pct > 0.0 {
            out.insert(ERROR_RATE.to_string(), self.error_pct);
        }
        out
    }
}

/// Splits `--degrade` values into the gateway's faults (the [`LATENCY`] and
/// [`ERROR_RATE`] metrics) and the rest, which are returned unparsed for
/// [`crate::slo::parse_degrade`]. Deltas of the same metric add up.
pub fn split_degrade(specs: &[String]) -> Result<(Faults, Vec<String>)> {
    let mut latency_ms = 0.0;
    let mut error_pct = 0.0;
    let mut rest = Vec::new();
    for spec in specs {
        let (metric, delta) = match spec.split_once('=') {
            Some((m, d)) if m.trim() == LATENCY || m.trim() == ERROR_RATE => (m.trim(), d.trim()),
            _ => {
                rest.push(spec.clone());
                continue;
            }
        };
        let Some(delta) = delta.parse::<f64>().ok().filter(|d| d.is_finite()) else {
            bail!("--degrade {spec:?}: {delta:?} is not a number (e.g. +1200 or +20)");
        };
        if metric == LATENCY {
            latency_ms += delta;
        } else {
            error_pct += delta;
        }
    }
    if !(0.0..=MAX_LATENCY_MS).contains(&latency_ms) {
        bail!("--degrade {LATENCY}: the injected latency must be 0 to {MAX_LATENCY_MS} ms, not {latency_ms}");
    }
    if !(0.0..=100.0).contains(&error_pct) {
        bail!("--degrade {ERROR_RATE}: the injected error rate must be 0 to 100 (percent), not {error_pct}");
    }
    let faults = Faults {
        latency: Duration::from_secs_f64(latency_ms / 1000.0),
        error_pct,
    };
    Ok((faults, rest))
}

/// [`Faults`] at work in a running gateway.
#[derive(Debug, Default)]
pub struct Injector {
    faults: Faults,
    seen: AtomicU64,
}

/// What the gateway does with a request after the faults had their say.
pub enum Injected {
    /// Serve it as usual.
    Serve(Request<Incoming>),
    /// Answer this instead.
    Answer(Response<Full<Bytes>>),
}

impl Injector {
    pub fn new(faults: Faults) -> Injector {
        Injector {
            faults,
            seen: AtomicU64::new(0),
        }
    }

    /// Applies the faults to a request of `route`: waits the injected
    /// latency, then either hands the request back or, for its share,
    /// answers `503` (after reading the body, at most `max_body` bytes within
    /// `body_timeout`, so the connection stays usable).
    pub async fn apply(
        &self,
        route: &str,
        req: Request<Incoming>,
        max_body: usize,
        body_timeout: Duration,
    ) -> Injected {
        if route != "/a2a/perform" || self.faults.is_none() {
            return Injected::Serve(req);
        }
        if !self.faults.latency.is_zero() {
            tokio::time::sleep(self.faults.latency).await;
        }
        if !self.fails_next() {
            return Injected::Serve(req);
        }
        let body = Limited::new(req.into_body(), max_body).collect();
        let _ = tokio::time::timeout(body_timeout, body).await;
        let text = format!(
            "{{\"ok\":false,\"error\":\"injected fault: {} % of requests are answered 503\"}}",
            self.faults.error_pct
        );
        let mut reply = Response::new(Full::new(Bytes::from(text)));
        *reply.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        reply
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Injected::Answer(reply)
    }

    /// Whether the next request is one of the failing share.
    fn fails_next(&self) -> bool {
        let p = self.faults.error_pct / 100.0;
        if p <= 0.0 {
            return false;
        }
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        (n as f64 * p).floor() > ((n - 1) as f64 * p).floor()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degrade_splits_into_faults_and_the_rest() {
        let specs: Vec<String> = [
            "A2A.perform.p95_ms=+1200",
            "GraphQL.reads.p95_ms=+200",
            "A2A.error_rate=+15",
            "A2A.error_rate=5",
            "bad-release",
        ]
        .map(String::from)
        .to_vec();
        let (faults, rest) = split_degrade(&specs).unwrap();
        assert_eq!(faults.latency, Duration::from_millis(1200));
        assert_eq!(faults.error_pct, 20.0);
        assert_eq!(rest, ["GraphQL.reads.p95_ms=+200", "bad-release"]);
        assert_eq!(faults.as_degrade()[LATENCY], 1200.0);
        let (none, _) = split_degrade(&[]).unwrap();
        assert!(none.is_none());
    }

    #[test]
    fn bad_faults_are_one_line_errors() {
        for (spec, needle) in [
            ("A2A.error_rate=x", "\"x\" is not a number"),
            ("A2A.error_rate=+120", "must be 0 to 100"),
            ("A2A.perform.p95_ms=-5", "must be 0 to 60000 ms"),
            ("A2A.perform.p95_ms=+9999999", "must be 0 to 60000 ms"),
        ] {
            let err = split_degrade(&[spec.to_string()]).unwrap_err().to_string();
            assert!(err.contains(needle), "{spec}: {err}");
            assert!(!err.contains('\n'));
        }
    }

    #[test]
    fn the_error_share_is_exact() {
        for pct in [0.0, 1.0, 20.0, 33.0, 50.0, 100.0] {
            let inj = Injector::new(Faults {
                latency: Duration::ZERO,
                error_pct: pct,
            });
            let failed = (0..1000).filter(|_| inj.fails_next()).count();
            assert_eq!(failed as f64, pct * 10.0, "{pct} %");
        }
        let inj = Injector::new(Faults {
            latency: Duration::ZERO,
            error_pct: 20.0,
        });
        let pattern: Vec<bool> = (0..10).map(|_| inj.fails_next()).collect();
        assert_eq!(pattern.iter().filter(|f| **f).count(), 2);
        assert!(pattern[4] && pattern[9]);
    }
}
