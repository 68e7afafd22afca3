//! Prometheus as a source of what a stage observed: the `[prometheus]`
//! section of `golive.toml` ([`Config`]), the HTTP API client, and the
//! snapshot made from instant queries.
//!
//! Every tool that gates real rollouts (Argo Rollouts analysis, Flagger
//! canary analysis, Keptn quality gates) reads the numbers it judges from
//! Prometheus with one PromQL query per metric. The configuration here has the
//! same shape: a server URL and a map from the snapshot's metric names
//! (`A2A.perform.p95_ms`, `availability`, ...) to PromQL, so a gate's metric
//! can be re-run by anyone against the same server, and the same queries can
//! be handed to those tools.
//!
//! A query may use the placeholder `$window` for its range (`rate(x[$window])`):
//! `slo snapshot --prometheus` replaces it with the configured `window`, and
//! `golive` with the time from the start of a stage's load to the query, so
//! the number describes that stage alone.

pub mod client;
pub mod observe;
pub mod snapshot;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

pub use client::{Answer, Client};
pub use snapshot::{resolve_url, run_snapshot, take, EvalTime, QueryRecord, Record};

/// The `[prometheus]` section of `golive.toml`.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The server's base URL (`http://127.0.0.1:9090`); `--prometheus` and
    /// `$PROMETHEUS_URL` override it. `None`: Prometheus is not used unless
    /// asked for on the command line.
    pub url: Option<String>,
    /// One PromQL instant query per metric, keyed by the snapshot's metric
    /// name. When the file has a `[prometheus.queries]` table, it replaces
    /// [`default_queries`] as a whole.
    pub queries: BTreeMap<String, Query>,
    /// The observation window: in `golive`, how long each stage drives load
    /// through the gateway before its metrics are queried; in `slo snapshot`,
    /// what `$window` stands for.
    pub window: Duration,
    /// The longest one HTTP request to Prometheus may take, connect included.
    pub timeout: Duration,
    /// In `golive`, how long to wait for Prometheus to scrape the gateway
    /// after a stage's load before giving up (a scrape target missing from
    /// its configuration never comes).
    pub scrape_wait: Duration,
}

/// One metric's query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// PromQL, possibly with `$window` (see the module docs). It must give one
    /// number: a scalar, or a vector of at most one sample.
    pub promql: String,
}

/// The placeholder for a query's range, see the module docs.
pub const WINDOW: &str = "$window";

/// The default query of the gateway's p95 latency of `POST /a2a/perform`, in
/// milliseconds, from the `a2a_request_duration_seconds` histogram.
pub const DEFAULT_P95: &str = "histogram_quantile(0.95, sum by (le) (rate(a2a_request_duration_seconds_bucket{route=\"/a2a/perform\"}[$window]))) * 1000";

/// The default query of the availability of `POST /a2a/perform` in percent:
/// the share of answers that were not 5xx. Denials (403) and client errors
/// (4xx) count as available: the gateway answered as it should.
pub const DEFAULT_AVAILABILITY: &str = "100 * (1 - ((sum(rate(a2a_requests_total{route=\"/a2a/perform\",code=~\"5..\"}[$window])) or vector(0)) / sum(rate(a2a_requests_total{route=\"/a2a/perform\"}[$window]))))";

/// The queries used when the configuration has none: the in-process
/// gateway's own p95 latency (`A2A.perform.p95_ms`) and availability
/// (`availability`) of `POST /a2a/perform`, from its `/metrics`.
pub fn default_queries() -> BTreeMap<String, Query> {
    [
        (crate::gates::A2A_P95, DEFAULT_P95),
        (crate::slo::AVAILABILITY, DEFAULT_AVAILABILITY),
    ]
    .into_iter()
    .map(|(metric, promql)| {
        let promql = promql.to_string();
        (metric.to_string(), Query { promql })
    })
    .collect()
}

/// The default observation window of a golive stage.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(4);
/// The default timeout of one request to Prometheus.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default wait for a scrape of the gateway.
pub const DEFAULT_SCRAPE_WAIT: Duration = Duration::from_secs(20);

impl Default for Config {
    fn default() -> Config {
        Config {
            url: None,
            queries: default_queries(),
            window: DEFAULT_WINDOW,
            timeout: DEFAULT_TIMEOUT,
            scrape_wait: DEFAULT_SCRAPE_WAIT,
        }
    }
}

impl Query {
    /// The PromQL to send, with `$window` replaced by `window` (see
    /// [`promql_duration`]).
    pub fn render(&self, window: Duration) -> String {
        self.promql.replace(WINDOW, &promql_duration(window))
    }
}

/// `window` as a PromQL duration: whole seconds as `4s`, anything else in
/// milliseconds, rounded up (`4501ms`); at least `1ms`.
pub fn promql_duration(window: Duration) -> String {
    let ms = window.as_nanos().div_ceil(1_000_000).max(1);
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The `[prometheus]` table as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    url: Option<String>,
    queries: Option<BTreeMap<String, RawQuery>>,
    window: Option<String>,
    timeout: Option<String>,
    scrape_wait: Option<String>,
}

/// A query: the PromQL as a string, or a table `{ query = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawQuery {
    Text(String),
    Table(RawQueryTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueryTable {
    query: String,
}

/// Metrics a query may not fill: the counters of a measured snapshot.
const NOT_QUERYABLE: [&str; 2] = ["requests", "errors"];

impl Config {
    /// The section from its parsed table; errors name `prometheus.<key>`.
    pub(crate) fn from_raw(raw: RawConfig) -> Result<Config, String> {
        let mut config = Config::default();
        if let Some(url) = raw.url {
            check_url(&url).map_err(|e| format!("prometheus.url: {e}"))?;
            config.url = Some(url);
        }
        if let Some(queries) = raw.queries {
            config.queries = BTreeMap::new();
            for (metric, raw) in queries {
                let promql = match raw {
                    RawQuery::Text(s) => s,
                    RawQuery::Table(t) => t.query,
                };
                if metric.is_empty() || NOT_QUERYABLE.contains(&metric.as_str()) {
                    return Err(format!(
                        "prometheus.queries: {metric:?} is not a metric a query can give"
                    ));
                }
                if promql.trim().is_empty() {
                    return Err(format!("prometheus.queries.{metric:?}: the query is empty"));
                }
                config.queries.insert(metric, Query { promql });
            }
        }
        let limits = |key: &str, text: &str, lo: Duration, hi: Duration| {
            let d = parse_duration(text).map_err(|e| format!("prometheus.{key}: {e}"))?;
            if d < lo || d > hi {
                return Err(format!(
                    "prometheus.{key}: {text:?} is out of range ({} to {})",
                    show_duration(lo),
                    show_duration(hi)
                ));
            }
            Ok(d)
        };
        if let Some(w) = raw.window {
            config.window = limits("window", &w, Duration::from_secs(1), MAX_WINDOW)?;
        }
        if let Some(t) = raw.timeout {
            config.timeout = limits("timeout", &t, Duration::from_millis(100), MAX_TIMEOUT)?;
        }
        if let Some(t) = raw.scrape_wait {
            config.scrape_wait = limits("scrape_wait", &t, Duration::from_secs(1), MAX_WINDOW)?;
        }
        Ok(config)
    }
}

/// The longest observation window (a golive run waits this long per stage).
pub const MAX_WINDOW: Duration = Duration::from_secs(3600);
/// The longest timeout of one request.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// Checks that `url` is an `http://` or `https://` base URL with a host.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
        return Err(format!("{url:?} has no host"));
    }
    Ok(())
}

/// Parses a duration as Prometheus writes them, one number and one unit:
/// `500ms`, `4s`, `1m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (e.g. 500ms, 4s, 1m, 1h)");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    };
    ms.map(Duration::from_millis).ok_or_else(bad)
}

/// `d` as [`parse_duration`] reads it back (`4s`, `500ms`).
pub fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        _ if ms > 0 && ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms > 0 && ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1_000) => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates;

    #[test]
    fn defaults_cover_the_gateways_own_metrics() {
        let c = gates::Config::parse("", "golive.toml").unwrap().prometheus;
        assert_eq!(c, Config::default());
        assert_eq!(c.url, None);
        assert_eq!(
            c.queries.keys().collect::<Vec<_>>(),
            ["A2A.perform.p95_ms", "availability"]
        );
        assert_eq!(c.window, Duration::from_secs(4));
        let p95 = c.queries["A2A.perform.p95_ms"].render(Duration::from_millis(5200));
        assert_eq!(p95, "histogram_quantile(0.95, sum by (le) (rate(a2a_request_duration_seconds_bucket{route=\"/a2a/perform\"}[5200ms]))) * 1000");
        assert!(!c.queries["availability"].render(c.window).contains(WINDOW));
    }

    #[test]
    fn section_parses_both_query_forms_and_replaces_the_defaults() {
        let text = r#"
            [prometheus]
            url = "http://127.0.0.1:9090"
            window = "10s"
            timeout = "2500ms"
            scrape_wait = "3s"
            [prometheus.queries]
            "A2A.perform.p95_ms" = 'histogram_quantile(0.95, sum(rate(a2a_request_duration_seconds_bucket{route="/a2a/perform"}[1m])) by (le)) * 1000'
            "GraphQL.reads.p95_ms" = { query = "graphql_reads_p95_ms" }
        "#;
        let c = gates::Config::parse(text, "golive.toml")
            .unwrap()
            .prometheus;
        assert_eq!(c.url.as_deref(), Some("http://127.0.0.1:9090"));
        assert_eq!(c.window, Duration::from_secs(10));
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.scrape_wait, Duration::from_secs(3));
        assert_eq!(c.queries.len(), 2);
        assert_eq!(
            c.queries["GraphQL.reads.p95_ms"].promql,
            "graphql_reads_p95_ms"
        );
        assert!(c.queries["A2A.perform.p95_ms"]
            .promql
            .ends_with("[1m])) by (le)) * 1000"));
    }

    #[test]
    fn section_errors_name_the_file_and_key() {
        for (text, needle) in [
            (
                "[prometheus]\nurl = \"localhost:9090\"",
                "prometheus.url: \"localhost:9090\" is not an http",
            ),
            ("[prometheus]\nurl = \"http://\"", "has no host"),
            (
                "[prometheus]\nwindow = \"5\"",
                "prometheus.window: \"5\" is not a duration",
            ),
            ("[prometheus]\nwindow = \"5d\"", "is not a duration"),
            (
                "[prometheus]\nscrape_wait = \"100ms\"",
                "prometheus.scrape_wait: \"100ms\" is out of range (1s to 1h)",
            ),
            (
                "[prometheus]\nwindow = \"500ms\"",
                "prometheus.window: \"500ms\" is out of range (1s to 1h)",
            ),
            (
                "[prometheus]\ntimeout = \"10m\"",
                "prometheus.timeout: \"10m\" is out of range",
            ),
            (
                "[prometheus]\ncolour = 1",
                "line 2, column 1: unknown field `colour`",
            ),
            (
                "[prometheus.queries]\nrequests = \"up\"",
                "\"requests\" is not a metric",
            ),
            (
                "[prometheus.queries]\navailability = \" \"",
                "the query is empty",
            ),
            (
                "[prometheus.queries]\navailability = { promql = \"up\" }",
                "line 2",
            ),
            ("[prometheus.queries]\navailability = 3", "line 2"),
        ] {
            let err = format!(
                "{:#}",
                gates::Config::parse(text, "golive.toml").unwrap_err()
            );
            assert!(err.starts_with("golive.toml: "), "{err}");
            assert!(err.contains(needle), "{text:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn durations_read_back() {
        for (text, d) in [
            ("500ms", Duration::from_millis(500)),
            ("4s", Duration::from_secs(4)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
        ] {
            assert_eq!(parse_duration(text), Ok(d));
            assert_eq!(show_duration(d), text);
        }
        for bad in [
            "",
            "s",
            "-1s",
            "1.5s",
            "1 s",
            "99999999999999999999h",
            "18446744073709551615h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(promql_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(promql_duration(Duration::from_micros(4_000_001)), "4001ms");
        assert_eq!(promql_duration(Duration::from_secs(60)), "60s");
        assert_eq!(promql_duration(Duration::ZERO), "1ms");
    }
}
