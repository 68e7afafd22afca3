//! A small client of Prometheus' HTTP API: instant queries
//! (`GET /api/v1/query?query=...&time=...`) that must give one number.
//!
//! The API answers `{"status": "success", "data": {"resultType", "result"}}`,
//! or `{"status": "error", "errorType", "error"}` with 400 (bad parameters,
//! bad PromQL), 422 (an expression that cannot be executed) or 503 (timeout);
//! anything before the API handler (a proxy, a wrong path) can answer with
//! any status and any body. Every way this goes wrong becomes one line that
//! says what Prometheus said. A gate needs one number per metric, so only a
//! `scalar` or a `vector` of at most one sample is an answer: an empty vector
//! or `NaN` means there is no data (the gate says `NO_DATA`), and several
//! series, a `matrix` or a `string` are errors that say how to fix the query.
//!
//! Requests are blocking `ureq` calls with one global timeout (connect
//! included), and the body read is bounded, so a hostile or broken server
//! can neither hang the kit nor grow its memory.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

/// The largest answer body read: 1 MiB (one number needs a few hundred bytes).
pub const MAX_BODY: u64 = 1 << 20;

/// What one instant query gave.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// One number, with the sample as Prometheus sent it (the vector element
    /// `{"metric": {...}, "value": [t, "v"]}`, or the scalar `[t, "v"]`).
    Number { value: f64, sample: Value },
    /// No number: an empty vector or `NaN`, with why, and the result as sent.
    Absent { reason: String, sample: Value },
}

/// A Prometheus server's query API.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    timeout: Duration,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the server at `url` (its base URL, e.g.
    /// `http://127.0.0.1:9090`); each request may take at most `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Client> {
        let base = url.trim().trim_end_matches('/').to_string();
        super::check_url(&base).map_err(|e| anyhow!("Prometheus URL {e}"))?;
        if base.starts_with("https://") {
            bail!(
                "{base}: https is not supported (the kit is built without TLS); use an http:// URL"
            );
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .max_idle_connections_per_host(1)
            .build()
            .into();
        Ok(Client {
            base,
            timeout,
            agent,
        })
    }

    /// The server's base URL, as queries are sent to it.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Runs `promql` as an instant query at `time` (RFC 3339 or Unix seconds,
    /// as the API takes it). Errors are one line, without the metric's name.
    pub fn query(&self, promql: &str, time: &str) -> Result<Answer> {
        let endpoint = format!("{}/api/v1/query", self.base);
        let sent = self
            .agent
            .get(&endpoint)
            .query("query", promql)
            .query("time", time)
            .call();
        let mut resp = match sent {
            Ok(resp) => resp,
            Err(ureq::Error::Timeout(_)) => bail!(
                "Prometheus at {} did not answer within {} (timeout)",
                self.base,
                super::show_duration(self.timeout)
            ),
            Err(e) => bail!("cannot reach Prometheus at {}: {e}", self.base),
        };
        let status = resp.status().as_u16();
        let text = match resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
        {
            Ok(text) => text,
            Err(ureq::Error::Timeout(_)) => bail!(
                "Prometheus at {} did not answer within {} (timeout)",
                self.base,
                super::show_duration(self.timeout)
            ),
            Err(e) => bail!(
                "cannot read the answer of Prometheus at {} (HTTP {status}): {e}",
                self.base
            ),
        };
        parse_answer(status, &text).with_context(|| format!("Prometheus at {}", self.base))
    }
}

/// Interprets one answer of `/api/v1/query` (see the module docs).
pub fn parse_answer(status: u16, text: &str) -> Result<Answer> {
    let body: Option<Value> = serde_json::from_str(text).ok();
    let said = |v: &Value| {
        let kind = v["errorType"].as_str().unwrap_or("error");
        let msg = v["error"].as_str().unwrap_or("no error message");
        one_line(&format!("{kind}: {msg}"))
    };
    let body = match body {
        Some(v) if v["status"] == "error" => bail!("HTTP {status}: {}", said(&v)),
        Some(v) if !(200..300).contains(&status) => bail!("HTTP {status}: {}", said(&v)),
        None if !(200..300).contains(&status) => {
            bail!("HTTP {status}: {}", one_line(&clip(text)))
        }
        None => bail!(
            "HTTP {status}: the answer is not JSON: {}",
            one_line(&clip(text))
        ),
        Some(v) if v["status"] != "success" => bail!(
            "HTTP {status}: not an answer of the query API: {}",
            one_line(&clip(text))
        ),
        Some(v) => v,
    };
    let data = &body["data"];
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("scalar") => number(result),
        Some("vector") => match result.as_array().map(Vec::as_slice) {
            Some([]) => Ok(Answer::Absent {
                reason: "the query returned no series (no data, or a selector that matches nothing)"
                    .to_string(),
                sample: result.clone(),
            }),
            Some([one]) => number(one),
            Some(many) => bail!(
                "the query returned {} series, not one number (aggregate them, e.g. with sum or max): {}",
                many.len(),
                clip(&series_names(many))
            ),
            None => bail!("a vector result that is not a list"),
        },
        Some("matrix") => bail!(
            "the query returned a range vector (matrix), not one number (wrap the [range] in a function such as rate or max_over_time)"
        ),
        Some("string") => bail!("the query returned a string, not a number"),
        other => bail!("unknown resultType {other:?}"),
    }
}

/// One sample's number: `[t, "v"]` alone (a scalar) or in `{"value": ...}`.
fn number(sample: &Value) -> Result<Answer> {
    let pair = sample.get("value").unwrap_or(sample);
    let text = pair[1]
        .as_str()
        .ok_or_else(|| anyhow!("a sample without a value: {}", clip(&sample.to_string())))?;
    match text {
        "NaN" => Ok(Answer::Absent {
            reason: "the query's value is NaN (e.g. no requests in the window: 0/0)".to_string(),
            sample: sample.clone(),
        }),
        "+Inf" | "-Inf" | "Inf" => bail!(
            "the query's value is {text}, not a number a gate can judge (for histogram_quantile: beyond the largest bucket)"
        ),
        t => match t.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(Answer::Number {
                value,
                sample: sample.clone(),
            }),
            _ => bail!("the sample value {t:?} is not a number"),
        },
    }
}

fn series_names(series: &[Value]) -> String {
    let names: Vec<String> = series
        .iter()
        .take(3)
        .map(|s| s["metric"].to_string())
        .collect();
    let more = if series.len() > 3 { ", ..." } else { "" };
    format!("{}{more}", names.join(", "))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn clip(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(result_type: &str, result: &str) -> String {
        format!(
            r#"{{"status":"success","data":{{"resultType":"{result_type}","result":{result}}}}}"#
        )
    }

    #[test]
    fn one_number_is_an_answer() {
        let a = parse_answer(
            200,
            &ok("vector", r#"[{"metric":{},"value":[1700000000.5,"12.5"]}]"#),
        );
        assert_eq!(
            a.unwrap(),
            Answer::Number {
                value: 12.5,
                sample: serde_json::json!({"metric": {}, "value": [1700000000.5, "12.5"]})
            }
        );
        let a = parse_answer(200, &ok("scalar", r#"[1700000000,"99.5"]"#)).unwrap();
        assert!(matches!(a, Answer::Number { value, .. } if value == 99.5));
    }

    #[test]
    fn empty_and_nan_are_absent() {
        let a = parse_answer(200, &ok("vector", "[]")).unwrap();
        assert!(
            matches!(a, Answer::Absent { ref reason, .. } if reason.contains("no series")),
            "{a:?}"
        );
        let a = parse_answer(200, &ok("vector", r#"[{"metric":{},"value":[1,"NaN"]}]"#)).unwrap();
        assert!(
            matches!(a, Answer::Absent { ref reason, .. } if reason.contains("NaN")),
            "{a:?}"
        );
    }

    #[test]
    fn every_other_answer_is_a_one_line_error() {
        let two = r#"[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]"#;
        for (status, text, needle) in [
            (200, ok("vector", two), "returned 2 series, not one number"),
            (200, ok("matrix", r#"[{"metric":{},"values":[[1,"1"]]}]"#), "range vector (matrix)"),
            (200, ok("string", r#"[1,"x"]"#), "returned a string"),
            (200, ok("vector", r#"[{"metric":{},"value":[1,"+Inf"]}]"#), "+Inf"),
            (
                400,
                r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error:\nunexpected"}"#.to_string(),
                "HTTP 400: bad_data: 1:5: parse error: unexpected",
            ),
            (
                200,
                r#"{"status":"error","errorType":"timeout","error":"query timed out"}"#.to_string(),
                "HTTP 200: timeout: query timed out",
            ),
            (404, "404 page not found\n".to_string(), "HTTP 404: 404 page not found"),
            (200, "<html>".to_string(), "not JSON"),
            (200, r#"{"ok":true}"#.to_string(), "not an answer of the query API"),
        ] {
            let err = format!("{:#}", parse_answer(status, &text).unwrap_err());
            assert!(err.contains(needle), "{text}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
