//! The gateway's `GET /metrics` and its fault injection (issue 11): the
//! exposition parses and is consistent with the requests sent, labels stay
//! bounded under a flood of unknown paths, and injected latency and 503s are
//! real. Every test starts its own gateway on `127.0.0.1:0`.

use crate::a2a_http;
use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use a2a_http::{post, seed_body, send_raw, Outcome, RawResponse};
use xtask::a2a::faults::Faults;
use xtask::a2a::{Gateway, GatewayOptions};

fn get(gw: &Gateway, path: &str) -> RawResponse {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    match send_raw(gw.addr(), req.as_bytes()) {
        Outcome::Response(r) => r,
        Outcome::Closed => panic!("no answer to GET {path}"),
    }
}

fn perform(gw: &Gateway, body: &[u8]) -> RawResponse {
    match send_raw(gw.addr(), &post("/a2a/perform", body)) {
        Outcome::Response(r) => r,
        Outcome::Closed => panic!("no answer to POST /a2a/perform"),
    }
}

/// One sample of the exposition: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format 0.0.4 strictly enough for these tests:
/// every line is a comment (`# HELP`/`# TYPE`) or `name{k="v",...} value`.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            assert!(
                rest.starts_with("HELP ") || rest.starts_with("TYPE "),
                "{line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                let labels = body
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("{line}"));
                        let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                        (
                            k.to_string(),
                            v.unwrap_or_else(|| panic!("{line}")).to_string(),
                        )
                    })
                    .collect();
                (name.to_string(), labels)
            }
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = find(samples, name, labels);
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0].value
}

#[test]
fn metrics_exposition_parses_and_counts_what_was_sent() {
    let gw = Gateway::start(GatewayOptions::default()).unwrap();
    for _ in 0..7 {
        assert_eq!(perform(&gw, &seed_body()).status, 200);
    }
    let mut denied = xtask::a2a::seed_request();
    denied["residency"] = "EU".into();
    for _ in 0..3 {
        assert_eq!(
            perform(&gw, &serde_json::to_vec(&denied).unwrap()).status,
            403
        );
    }
    assert_eq!(perform(&gw, b"{not json").status, 400);
    assert_eq!(get(&gw, "/health").status, 200);
    assert_eq!(get(&gw, "/nope").status, 404);

    let resp = get(&gw, "/metrics");
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = String::from_utf8(resp.body).unwrap();
    let s = parse_exposition(&text);
    let perform = [("route", "/a2a/perform")];
    let requests = "a2a_requests_total";
    assert_eq!(
        value(
            &s,
            requests,
            &[perform[0], ("code", "200"), ("decision", "allow")]
        ),
        7.0
    );
    assert_eq!(
        value(
            &s,
            requests,
            &[perform[0], ("code", "403"), ("decision", "deny")]
        ),
        3.0
    );
    assert_eq!(
        value(
            &s,
            requests,
            &[perform[0], ("code", "400"), ("decision", "none")]
        ),
        1.0
    );
    assert_eq!(
        value(&s, requests, &[("route", "/health"), ("code", "200")]),
        1.0
    );
    assert_eq!(
        value(&s, requests, &[("route", "other"), ("code", "404")]),
        1.0
    );
    // The scrape itself is counted once it is answered, so not in its own body.
    assert!(find(&s, requests, &[("route", "/metrics")]).is_empty());

    // The histogram: buckets rise, +Inf equals _count, _count equals the requests.
    let count = value(&s, "a2a_request_duration_seconds_count", &perform);
    assert_eq!(count, 11.0);
    let buckets = find(&s, "a2a_request_duration_seconds_bucket", &perform);
    assert_eq!(buckets.len(), 31, "30 bounds and +Inf");
    let les: Vec<f64> = buckets
        .iter()
        .map(|b| match b.labels["le"].as_str() {
            "+Inf" => f64::INFINITY,
            le => le.parse().unwrap(),
        })
        .collect();
    assert!(les.windows(2).all(|w| w[0] < w[1]), "{les:?}");
    assert_eq!(les[0], 0.0001);
    assert_eq!(les[29], 10.0);
    assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value));
    assert_eq!(buckets.last().unwrap().value, count);
    assert!(value(&s, "a2a_request_duration_seconds_sum", &perform) > 0.0);
    // Policy evaluation: one per decision (the malformed request made none).
    assert_eq!(
        value(&s, "a2a_policy_eval_duration_seconds_count", &[]),
        10.0
    );
    let policy_inf = value(
        &s,
        "a2a_policy_eval_duration_seconds_bucket",
        &[("le", "+Inf")],
    );
    assert_eq!(policy_inf, 10.0);
    let build = find(&s, "a2a_build_info", &[]);
    assert_eq!(build.len(), 1);
    assert_eq!(build[0].value, 1.0);
    assert_eq!(build[0].labels["version"], env!("CARGO_PKG_VERSION"));
    assert!(!build[0].labels["policy"].is_empty());
}

#[test]
fn unknown_paths_share_one_route_label() {
    let gw = Gateway::start(GatewayOptions::default()).unwrap();
    let before = get(&gw, "/metrics").body.len();
    for i in 0..300 {
        assert_eq!(get(&gw, &format!("/attack/{i}?q={i}")).status, 404);
    }
    let text = String::from_utf8(get(&gw, "/metrics").body).unwrap();
    let s = parse_exposition(&text);
    let routes: std::collections::BTreeSet<&str> = s
        .iter()
        .filter_map(|x| x.labels.get("route").map(String::as_str))
        .collect();
    assert!(
        routes
            .iter()
            .all(|r| xtask::a2a::metrics::ROUTES.contains(r)),
        "{routes:?}"
    );
    assert_eq!(
        value(
            &s,
            "a2a_requests_total",
            &[("route", "other"), ("code", "404")]
        ),
        300.0
    );
    assert!(!text.contains("attack"));
    // 300 new paths add one counter series and a few bytes, not 300 series.
    assert!(text.len() < before + 600, "{} -> {}", before, text.len());
}

#[test]
fn injected_latency_is_real_and_measured() {
    let gw = Gateway::start(GatewayOptions {
        faults: Faults {
            latency: Duration::from_millis(300),
            error_pct: 0.0,
        },
        ..GatewayOptions::default()
    })
    .unwrap();
    let started = Instant::now();
    assert_eq!(perform(&gw, &seed_body()).status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Monitoring endpoints are not slowed down.
    let started = Instant::now();
    let text = String::from_utf8(get(&gw, "/metrics").body).unwrap();
    assert!(started.elapsed() < Duration::from_millis(300));
    let s = parse_exposition(&text);
    let perform = ("route", "/a2a/perform");
    assert_eq!(
        value(
            &s,
            "a2a_request_duration_seconds_bucket",
            &[perform, ("le", "0.2")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &s,
            "a2a_request_duration_seconds_bucket",
            &[perform, ("le", "0.4")]
        ),
        1.0
    );
}

#[test]
fn injected_errors_answer_their_exact_share_with_503() {
    let gw = Gateway::start(GatewayOptions {
        faults: Faults {
            latency: Duration::ZERO,
            error_pct: 25.0,
        },
        ..GatewayOptions::default()
    })
    .unwrap();
    let statuses: Vec<u16> = (0..20).map(|_| perform(&gw, &seed_body()).status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 503).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        15,
        "{statuses:?}"
    );
    let s = parse_exposition(&String::from_utf8(get(&gw, "/metrics").body).unwrap());
    let labels = [
        ("route", "/a2a/perform"),
        ("code", "503"),
        ("decision", "none"),
    ];
    assert_eq!(value(&s, "a2a_requests_total", &labels), 5.0);
    assert_eq!(get(&gw, "/health").status, 200);
}

#[test]
fn serve_refuses_a_degrade_it_cannot_inject() {
    let dir = common::temp_project();
    let out = common::run_within(
        common::xtask(dir.path()).args([
            "a2a",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--degrade",
            "GraphQL.reads.p95_ms=+200",
        ]),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains("the gateway injects only A2A.perform.p95_ms=+MS"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// Kills the child process however the test ends.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_injects_the_same_faults_from_the_command_line() {
    let dir = common::temp_project();
    let port = common::free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _serve = Kill(
        common::xtask(dir.path())
            .args(["a2a", "serve", "--addr", &addr.to_string()])
            .args([
                "--degrade",
                "A2A.error_rate=+50",
                "--degrade",
                "A2A.perform.p95_ms=+100",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "a2a serve did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    let statuses: Vec<u16> = (0..4)
        .map(
            |_| match send_raw(addr, &post("/a2a/perform", &seed_body())) {
                Outcome::Response(r) => r.status,
                Outcome::Closed => panic!("no answer"),
            },
        )
        .collect();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "4 x 100 ms injected"
    );
    assert_eq!(statuses, [200, 503, 200, 503]);
}

#[test]
fn without_metrics_there_is_no_metrics_endpoint() {
    let gw = Gateway::start(GatewayOptions {
        metrics: false,
        ..GatewayOptions::default()
    })
    .unwrap();
    assert_eq!(perform(&gw, &seed_body()).status, 200);
    let resp = get(&gw, "/metrics");
    assert_eq!(resp.status, 404);
    assert!(resp.json()["error"]
        .as_str()
        .unwrap()
        .contains("no such endpoint: /metrics"));
}
