//! A raw HTTP/1.1 client over `TcpStream` for the gateway tests: it sends
//! exactly the bytes a test gives it (hostile ones included) and reads one
//! response, framed by `Content-Length`, or until the server closes.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One parsed response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// What happened to a request.
#[derive(Debug)]
pub enum Outcome {
    Response(RawResponse),
    /// The server closed the connection without answering.
    Closed,
}

/// Opens a connection with a 5 s read timeout.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to the gateway");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Sends `bytes` on a new connection and reads one response.
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Outcome {
    let mut s = connect(addr);
    // The server may answer (and close) before it has read everything, e.g. a
    // 413 for a large body; a failed write is then not the test's concern.
    let _ = s.write_all(bytes);
    read_response(&mut s)
}

/// Reads one response from `s`.
pub fn read_response(s: &mut TcpStream) -> Outcome {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) if buf.is_empty() => return Outcome::Closed,
            Ok(0) => panic!(
                "connection closed inside a response head: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!(
                "read failed inside a response head ({e}): {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head:?}"));
    let mut resp = RawResponse {
        status,
        head,
        body: buf[head_end..].to_vec(),
    };
    match resp
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(len) => {
            while resp.body.len() < len {
                match s.read(&mut chunk) {
                    Ok(0) => panic!("connection closed inside a body"),
                    Ok(n) => resp.body.extend_from_slice(&chunk[..n]),
                    Err(e) => panic!("read failed inside a body: {e}"),
                }
            }
            resp.body.truncate(len);
        }
        None => {
            let _ = s.read_to_end(&mut resp.body);
        }
    }
    Outcome::Response(resp)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A well-formed `POST` with a JSON body on a keep-alive connection.
pub fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// The seed's example request body.
pub fn seed_body() -> Vec<u8> {
    serde_json::to_vec(&xtask::a2a::seed_request()).unwrap()
}

/// Sends the seed's request and returns the response, which must be a 200.
pub fn good_request(addr: SocketAddr) -> RawResponse {
    match send_raw(addr, &post("/a2a/perform", &seed_body())) {
        Outcome::Response(r) if r.status == 200 => r,
        other => panic!("the good request failed: {other:?}"),
    }
}

/// A gateway writing its decision log to `rel` in a new temp dir (kept alive
/// by the returned dir), and the log's path.
pub fn logged_gateway(rel: &str) -> (tempfile::TempDir, std::path::PathBuf, xtask::a2a::Gateway) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join(rel);
    let gw = xtask::a2a::Gateway::start(xtask::a2a::GatewayOptions {
        decision_log: Some(log.clone()),
        ..Default::default()
    })
    .unwrap();
    (dir, log, gw)
}

/// The decision log's lines, each parsed as JSON.
pub fn log_lines(log: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
