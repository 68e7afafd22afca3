//! The gateway's Prometheus metrics, served at `GET /metrics` in the
//! Prometheus text format 0.0.4 by the official `prometheus-client` crate:
//!
//! - `a2a_requests_total{route, code, decision}`: requests answered, by route,
//!   HTTP status and policy decision (`allow`, `deny`, or `none` when no
//!   policy decision was made);
//! - `a2a_request_duration_seconds{route}`: a histogram of the time from the
//!   request's arrival to its answer, injected latency included;
//! - `a2a_policy_eval_duration_seconds`: a histogram of policy evaluation alone;
//! - `a2a_build_info{version, policy}`: always 1.
//!
//! Label values are bounded, so no client can grow the server's memory by
//! inventing paths: `route` is one of [`ROUTES`] (the known endpoints, and
//! `other` for every other path), `code` is an HTTP status, `decision` one of
//! three words.
//!
//! The duration buckets run from 100 µs to 10 s, with the steps finest where
//! the gates' objectives lie (the A2A p95 passes at 500 ms and warns to
//! 1000 ms): `histogram_quantile` interpolates linearly within a bucket, so a
//! bucket's width bounds its error, and around those bounds the buckets are
//! 50 to 100 ms wide.

use std::time::Duration;

use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `route` label values: the gateway's endpoints, then `other`.
pub const ROUTES: [&str; 7] = [
    "/a2a/perform",
    "/v1/data",
    "/health",
    "/metrics",
    "/a2a/v1",
    "/.well-known/agent-card.json",
    OTHER,
];
/// The answers of `/a2a/perform` whose counters start at 0: allowed,
/// denied, malformed, and the 503 of an injected fault.
const PERFORM_ANSWERS: [(u16, Option<Decision>); 4] = [
    (200, Some(Decision::Allow)),
    (403, Some(Decision::Deny)),
    (400, None),
    (503, None),
];
/// The route of every path that is not a known endpoint.
pub const OTHER: &str = "other";

/// Upper bounds (seconds) of `a2a_request_duration_seconds`' buckets.
#[rustfmt::skip]
pub const DURATION_BUCKETS: [f64; 30] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9,
    0.95, 1.0, 1.1, 1.25, 1.5, 2.0, 2.5, 5.0, 7.5, 10.0,
];
/// Upper bounds (seconds) of `a2a_policy_eval_duration_seconds`' buckets:
/// from 1 µs (a memoised decision) to 100 ms.
#[rustfmt::skip]
pub const POLICY_BUCKETS: [f64; 15] = [
    0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025,
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
];

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The route label of a request path (see [`ROUTES`]).
pub fn route(path: &str) -> &'static str {
    match path {
        "/a2a/perform" => ROUTES[0],
        "/v1/data" => ROUTES[1],
        p if p.starts_with("/v1/data/") => ROUTES[1],
        "/health" => ROUTES[2],
        "/metrics" => ROUTES[3],
        "/a2a/v1" => ROUTES[4],
        "/.well-known/agent-card.json" => ROUTES[5],
        _ => OTHER,
    }
}

/// The policy decision behind an answer, as a label value. A handler that
/// made a decision puts it into the response's extensions; an answer
/// without one counts as `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    fn label(decision: Option<Decision>) -> &'static str {
        match decision {
            Some(Decision::Allow) => "allow",
            Some(Decision::Deny) => "deny",
            None => "none",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    code: u16,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    policy: String,
}

/// The gateway's metrics and their registry, or nothing when they are off
/// (`a2a serve --no-metrics`: no `/metrics`, no per-request bookkeeping).
pub struct Metrics(Option<Registered>);

struct Registered {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    /// One histogram per entry of [`ROUTES`], registered in a family.
    durations: Vec<Histogram>,
    policy_eval: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("enabled", &self.enabled())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers the metrics of a gateway running `policy`.
    pub fn new(policy: &str) -> Metrics {
        Metrics(Some(Registered::new(policy)))
    }

    /// No metrics: recording does nothing and there is no exposition.
    pub fn off() -> Metrics {
        Metrics(None)
    }

    /// Whether the metrics are kept (and `/metrics` served).
    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Records one answered request.
    pub fn observe(
        &self,
        route: &'static str,
        code: StatusCode,
        decision: Option<Decision>,
        elapsed: Duration,
    ) {
        if let Some(m) = &self.0 {
            m.observe(route, code, decision, elapsed);
        }
    }

    /// Records one policy evaluation.
    pub fn observe_policy(&self, elapsed: Duration) {
        if let Some(m) = &self.0 {
            m.policy_eval.observe(elapsed.as_secs_f64());
        }
    }

    /// The exposition, in the Prometheus text format 0.0.4 (empty when off).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        if let Some(m) = &self.0 {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &m.registry)
                .expect("writing to a String does not fail");
        }
        out
    }

    /// The answer to `GET /metrics`.
    pub fn reply<B: From<Bytes>>(&self) -> Response<B> {
        let mut reply = Response::new(B::from(Bytes::from(self.encode())));
        reply
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_TEXT));
        reply
    }
}

impl Registered {
    fn new(policy: &str) -> Registered {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        // The answers of /a2a/perform exist from the start, at 0, so that
        // Prometheus' rate() sees the first ones as an increase.
        for (code, decision) in PERFORM_ANSWERS {
            drop(requests.get_or_create(&RequestLabels {
                route: ROUTES[0],
                code,
                decision: Decision::label(decision),
            }));
        }
        registry.register(
            "a2a_requests",
            "Requests answered by the A2A gateway, by route, HTTP status and policy decision",
            requests.clone(),
        );
        let durations_family =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(|| {
                Histogram::new(DURATION_BUCKETS)
            });
        registry.register(
            "a2a_request_duration_seconds",
            "Time from a request's arrival to its answer, by route",
            durations_family.clone(),
        );
        // Each route's histogram is looked up once; the family shares them.
        let durations = ROUTES
            .iter()
            .map(|route| durations_family.get_or_create_owned(&RouteLabels { route }))
            .collect();
        let policy_eval = Histogram::new(POLICY_BUCKETS);
        registry.register(
            "a2a_policy_eval_duration_seconds",
            "Time spent evaluating the policy for one decision (memoised decisions included)",
            policy_eval.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
                policy: policy.to_string(),
            })
            .set(1);
        registry.register(
            "a2a_build_info",
            "The gateway's version and policy (always 1)",
            build,
        );
        Registered {
            registry,
            requests,
            durations,
            policy_eval,
        }
    }

    fn observe(
        &self,
        route: &'static str,
        code: StatusCode,
        decision: Option<Decision>,
        elapsed: Duration,
    ) {
        let labels = RequestLabels {
            route,
            code: code.as_u16(),
            decision: Decision::label(decision),
        };
        self.requests.get_or_create(&labels).inc();
        let i = ROUTES
            .iter()
            .position(|r| *r == route)
            .unwrap_or(ROUTES.len() - 1);
        self.durations[i].observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_bounded() {
        assert_eq!(route("/a2a/perform"), "/a2a/perform");
        assert_eq!(route("/v1/data/a2a/decision"), "/v1/data");
        assert_eq!(route("/v1/database"), OTHER);
        assert_eq!(route("/a2a/perform/"), OTHER);
        let m = Metrics::new("default");
        for i in 0..1000 {
            let r = route(&format!("/x/{i}"));
            m.observe(r, StatusCode::NOT_FOUND, None, Duration::from_micros(50));
        }
        let text = m.encode();
        assert!(
            text.contains(
                "a2a_requests_total{route=\"other\",code=\"404\",decision=\"none\"} 1000\n"
            ),
            "{text}"
        );
        // About 2.5 KiB per route (its duration histogram): 7 routes in all.
        assert!(text.len() < 24 * 1024, "{} bytes", text.len());
    }

    #[test]
    fn buckets_rise_from_100_microseconds_to_10_seconds() {
        assert_eq!(DURATION_BUCKETS[0], 0.0001);
        assert_eq!(DURATION_BUCKETS[DURATION_BUCKETS.len() - 1], 10.0);
        assert!(DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert!(POLICY_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        // The A2A objective's bounds (pass 500 ms, warn 1000 ms) are bucket
        // bounds, so `histogram_quantile` never puts a p95 on the wrong side
        // of them, and between 400 ms and 1.1 s a bucket is at most 100 ms wide.
        assert!(DURATION_BUCKETS.contains(&0.5) && DURATION_BUCKETS.contains(&1.0));
        for w in DURATION_BUCKETS.windows(2) {
            if w[0] >= 0.4 && w[1] <= 1.1 {
                assert!(w[1] - w[0] <= 0.1 + 1e-9, "{w:?}");
            }
        }
    }
}
