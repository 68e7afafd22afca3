//! Hardening of the A2A gateway (issue 6, gateway part): hostile raw requests
//! over `TcpStream`, idle connections that must not starve a good client, and
//! a multi-thread load after which the decision log is whole. Every server is
//! in-process on `127.0.0.1:0`; every load is bounded in count and in time.

use crate::a2a_http;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use a2a_http::{connect, good_request, post, read_response, seed_body, send_raw, Outcome};
use serde_json::Value;
use xtask::a2a::{self, Gateway, GatewayOptions};

/// What a hostile request must get.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// This status, with the gateway's JSON error body `{"ok": false, "error"}`.
    Json(u16),
    /// This status from hyper's own HTTP parser, which answers a request it
    /// cannot parse with a bare status line and closes the connection.
    Bare(u16),
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut req =
        b"POST /a2a/perform HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in body.chunks(1000) {
        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend_from_slice(part);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    req
}

fn with_head(head: &str, body: &[u8]) -> Vec<u8> {
    let mut req = head.as_bytes().to_vec();
    req.extend_from_slice(body);
    req
}

/// The hostile corpus: name, raw bytes, expected answer.
fn corpus() -> Vec<(&'static str, Vec<u8>, Want)> {
    let seed = seed_body();
    let nested = {
        let depth = 100_000;
        let mut s = String::with_capacity(2 * depth + 64);
        s.push_str(r#"{"tenantId":"TENANT_001","purpose":"investigation","residency":"US","pqid":"pq.getPersonById","agent":"a","task":{"x":"#);
        s.push_str(&"[".repeat(depth));
        s.push_str(&"]".repeat(depth));
        s.push_str("}}");
        s.into_bytes()
    };
    let many_headers = {
        let mut h = String::from("POST /a2a/perform HTTP/1.1\r\nHost: x\r\n");
        for i in 0..200 {
            h.push_str(&format!("X-Hostile-{i}: {i}\r\n"));
        }
        h.push_str(&format!("Content-Length: {}\r\n\r\n", seed.len()));
        with_head(&h, &seed)
    };
    let ten_mb = vec![b'a'; 10 << 20];
    let over_limit_chunked = {
        let mut body = br#"{"tenantId":""#.to_vec();
        body.extend(std::iter::repeat_n(b'a', (1 << 20) + 10));
        body.extend_from_slice(b"\"}");
        chunked(&body)
    };
    vec![
        // Request lines.
        ("garbage request line", b"HELLO\r\n\r\n".to_vec(), Want::Bare(400)),
        ("request line without version", b"POST /a2a/perform\r\n\r\n".to_vec(), Want::Bare(400)),
        ("unknown HTTP version", b"POST /a2a/perform HTTP/7.1\r\nHost: x\r\n\r\n".to_vec(), Want::Bare(400)),
        ("NUL byte in the path", b"POST /a2a/\0perform HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Want::Bare(400)),
        ("raw non-ASCII bytes in the path", b"POST /a2a/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Want::Bare(400)),
        ("unknown method", b"BREW /a2a/perform HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Want::Json(405)),
        (
            "very long path (100 KiB)",
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100 << 10)).into_bytes(),
            Want::Bare(431),
        ),
        (
            "long path within limits (8 KiB)",
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(8 << 10)).into_bytes(),
            Want::Json(404),
        ),
        // Headers.
        ("header without a colon", b"POST /a2a/perform HTTP/1.1\r\nHost x\r\n\r\n".to_vec(), Want::Bare(400)),
        ("space before the colon", b"POST /a2a/perform HTTP/1.1\r\nHost : x\r\n\r\n".to_vec(), Want::Bare(400)),
        ("control byte in a header name", b"POST /a2a/perform HTTP/1.1\r\nHo\x01st: x\r\n\r\n".to_vec(), Want::Bare(400)),
        (
            "obsolete line folding",
            b"POST /a2a/perform HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n".to_vec(),
            Want::Bare(400),
        ),
        ("200 headers", many_headers, Want::Bare(431)),
        (
            "a 100 KiB header value",
            format!("POST /a2a/perform HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "v".repeat(100 << 10)).into_bytes(),
            Want::Bare(431),
        ),
        // Content-Length.
        (
            "non-numeric Content-Length",
            with_head("POST /a2a/perform HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", &seed),
            Want::Bare(400),
        ),
        (
            "negative Content-Length",
            with_head("POST /a2a/perform HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", &seed),
            Want::Bare(400),
        ),
        (
            "two different Content-Lengths",
            with_head("POST /a2a/perform HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 9\r\n\r\n", &seed),
            Want::Bare(400),
        ),
        (
            "Content-Length shorter than the body",
            with_head("POST /a2a/perform HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n", &seed),
            Want::Json(400),
        ),
        (
            "missing Content-Length (the body is not read)",
            with_head("POST /a2a/perform HTTP/1.1\r\nHost: x\r\n\r\n", &seed),
            Want::Json(400),
        ),
        ("Content-Length: 0", post("/a2a/perform", b""), Want::Json(400)),
        (
            "Content-Length of 10 GB announced",
            b"POST /a2a/perform HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\nExpect: 100-continue\r\n\r\n".to_vec(),
            Want::Json(413),
        ),
        ("a 10 MB body", post("/a2a/perform", &ten_mb), Want::Json(413)),
        // Chunked bodies.
        (
            "bad chunk size",
            b"POST /a2a/perform HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n".to_vec(),
            Want::Json(400),
        ),
        ("chunked body over the limit", over_limit_chunked, Want::Json(413)),
        ("chunked malformed JSON", chunked(b"{\"tenantId\": [1, 2"), Want::Json(400)),
        (
            "unknown transfer coding",
            with_head("POST /a2a/perform HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", &seed),
            Want::Bare(400),
        ),
        (
            "Content-Length and chunked together (smuggling)",
            with_head(
                "POST /a2a/perform HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"5\r\n{bad}\r\n0\r\n\r\n",
            ),
            Want::Json(400),
        ),
        // Bodies.
        ("deeply nested JSON", post("/a2a/perform", &nested), Want::Json(400)),
        ("invalid UTF-8 in a string", post("/a2a/perform", b"{\"tenantId\":\"\xc3\x28\"}"), Want::Json(400)),
        ("JSON null", post("/a2a/perform", b"null"), Want::Json(400)),
        ("trailing garbage after JSON", post("/a2a/perform", b"{}}}}"), Want::Json(400)),
        ("data API with a non-object body", post("/v1/data/a2a/allow", b"[]"), Want::Json(400)),
    ]
}

#[test]
fn a2a_hostile_requests_get_4xx_and_the_gateway_keeps_serving() {
    let gw = Gateway::start(GatewayOptions::default()).unwrap();
    let addr = gw.addr();
    let corpus = corpus();
    assert!(corpus.len() >= 20);
    let mut failures = Vec::new();
    for (name, bytes, want) in corpus {
        let outcome = send_raw(addr, &bytes);
        let ok = match (&outcome, want) {
            (Outcome::Response(r), Want::Json(code)) => {
                r.status == code
                    && serde_json::from_slice::<Value>(&r.body).is_ok_and(|b| {
                        b["ok"] == false && b["error"].as_str().is_some_and(|e| !e.is_empty())
                    })
            }
            (Outcome::Response(r), Want::Bare(code)) => r.status == code,
            (Outcome::Closed, _) => false,
        };
        if !ok {
            let shown = match &outcome {
                Outcome::Response(r) => {
                    format!("{} {:?}", r.status, String::from_utf8_lossy(&r.body))
                }
                Outcome::Closed => "closed without an answer".to_string(),
            };
            failures.push(format!("{name}: want {want:?}, got {shown}"));
        }
        // Whatever happened, the next good request is served.
        good_request(addr);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a2a_idle_connections_do_not_block_a_good_client() {
    let gw = Gateway::start(GatewayOptions::default()).unwrap();
    let addr = gw.addr();
    // 200 connections that never send a byte, and 20 that stop mid-head.
    let mut idle: Vec<TcpStream> = (0..200).map(|_| connect(addr)).collect();
    for _ in 0..20 {
        let mut s = connect(addr);
        s.write_all(b"POST /a2a/perform HTTP/1.1\r\nHost: x\r\nContent-Le")
            .unwrap();
        idle.push(s);
    }
    // A keep-alive client's requests are still answered. A gateway blocked by
    // the idle connections would answer only once they time out (10 s for a
    // head), so the bound is well below that, and generous: 20 times what a
    // loaded 2-core machine needs, so the test does not flake.
    const BLOCKED: Duration = Duration::from_secs(2);
    let mut client = connect(addr);
    let req = post("/a2a/perform", &seed_body());
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        client.write_all(&req).unwrap();
        match read_response(&mut client) {
            Outcome::Response(r) => assert_eq!(r.status, 200),
            Outcome::Closed => panic!("the good client's connection was closed"),
        }
        slowest = slowest.max(started.elapsed());
    }
    assert!(slowest < BLOCKED, "slowest request took {slowest:?}");
    // New connections are accepted too.
    let started = Instant::now();
    good_request(addr);
    assert!(started.elapsed() < BLOCKED, "took {:?}", started.elapsed());
    drop(idle);
}

#[test]
fn a2a_multi_thread_load_leaves_a_whole_decision_log() {
    let (_dir, log, gw) = a2a_http::logged_gateway("decisions.jsonl");
    let url = gw.url();
    // Four client threads, each its own load of 250 requests over 2 connections.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || a2a::load(&url, 250, 2, Duration::from_secs(30)).unwrap())
        })
        .collect();
    let mut total = 0;
    for t in threads {
        let r = t.join().unwrap();
        assert_eq!(r.errors, 0, "{r:?}");
        total += r.requests;
    }
    assert_eq!(total, 1000);
    gw.shutdown().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'));
    let mut ids = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}: {line:?}", i + 1));
        assert_eq!(v["allow"], true, "line {}", i + 1);
        assert!(
            ids.insert(v["id"].as_str().unwrap().to_string()),
            "duplicate id on line {}",
            i + 1
        );
    }
    assert_eq!(ids.len(), 1000);
}
