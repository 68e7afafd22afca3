//! A real Prometheus server for the tests: Debian's `prometheus` binary (or
//! `$MC_TEST_PROMETHEUS`), started with its own config (scrape interval 1 s,
//! the given targets), its own storage in a temp dir and a free loopback
//! port, never 9090, and killed when the guard drops. Without the binary a
//! test says it is skipped, except under `CI=true`, where it fails.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Prometheus; dropping it kills the process.
pub struct PromServer {
    child: Child,
    pub url: String,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Drop for PromServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Prometheus binary: `$MC_TEST_PROMETHEUS`, else `prometheus` on PATH.
fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MC_TEST_PROMETHEUS").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
}

/// Starts Prometheus scraping `targets` (`host:port`, `/metrics`) every
/// second; `None` (the test is skipped) when Prometheus is not installed.
pub fn start(targets: &[String]) -> Option<PromServer> {
    let Some(bin) = binary() else {
        assert!(
            std::env::var("CI").ok().as_deref() != Some("true"),
            "prometheus is missing: `apt-get install -y prometheus` (.ci/run does)"
        );
        eprintln!("skipped: prometheus is not installed (apt-get install -y prometheus)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
    let config = format!(
        "global:\n  scrape_interval: 250ms\n  scrape_timeout: 250ms\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: a2a\n    static_configs:\n      - targets: [{}]\n",
        list.join(", ")
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    for _ in 0..3 {
        let port = crate::common::free_port();
        let mut child = Command::new(&bin)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.try_clone().unwrap())
            .spawn()
            .expect("prometheus starts");
        if wait_ready(&mut child, port) {
            return Some(PromServer {
                child,
                url: format!("http://127.0.0.1:{port}"),
                port,
                dir,
            });
        }
        // The port was taken between our probe and its bind: try another.
        let _ = child.kill();
        let _ = child.wait();
    }
    let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    panic!("prometheus did not start: {log}");
}

/// Waits up to 30 s for `/-/ready`; false if the process ended first.
fn wait_ready(child: &mut Child, port: u16) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if get(port, "/-/ready").is_some_and(|(status, _)| status == 200) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("prometheus on port {port} was not ready within 30 s");
}

impl PromServer {
    /// The temp dir holding its config, data and log.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Runs an instant query directly (raw HTTP, not the kit's client) and
    /// returns the whole JSON answer.
    pub fn query(&self, promql: &str, time: Option<&str>) -> serde_json::Value {
        let mut path = format!("/api/v1/query?query={}", encode(promql));
        if let Some(t) = time {
            path.push_str(&format!("&time={}", encode(t)));
        }
        let (status, body) = get(self.port, &path).expect("prometheus answers");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("HTTP {status}: {e}: {body}"))
    }

    /// The single value of `promql` now, if it has one.
    pub fn value(&self, promql: &str) -> Option<f64> {
        let answer = self.query(promql, None);
        let result = answer["data"]["result"].as_array()?.first()?.clone();
        result["value"][1].as_str()?.parse().ok()
    }

    /// Waits (up to 30 s) until `promql` is at least `want`.
    pub fn wait_for(&self, promql: &str, want: f64) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if self.value(promql).is_some_and(|v| v >= want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "{promql} did not reach {want} within 30 s (now {:?})",
            self.value(promql)
        );
    }
}

/// Percent-encodes a query parameter.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A GET on loopback `port`: the status and body, or `None` if it failed.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
