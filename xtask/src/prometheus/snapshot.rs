//! An SLO snapshot from Prometheus: one instant query per configured metric,
//! all at one evaluation time, written as the usual [`Snapshot`] with
//! `"source": "prometheus"` and a [`Record`] of the server, the time, and
//! each metric's query and raw sample, so any reader can re-run the queries
//! and get the same numbers.
//!
//! A metric whose query gives no data (an empty vector, or `NaN`) is left out
//! of the snapshot, and the record says why; the gate then reports it
//! `NO_DATA`. Any other failure (server unreachable or slow, an HTTP error,
//! bad PromQL, a result that is not one number) stops the snapshot with one
//! line naming the metric, and nothing is written.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::{Answer, Client};
use super::{Config, Query};
use crate::slo::{self, Snapshot, Source};
use crate::util::{self, exit};

/// Where a snapshot's Prometheus metrics came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The server's base URL.
    pub server: String,
    /// The evaluation time of every query (RFC 3339 UTC, milliseconds), as
    /// sent in the `time` parameter.
    #[serde(rename = "evalTime")]
    pub eval_time: String,
    /// Per metric: the PromQL sent and what came back.
    pub queries: BTreeMap<String, QueryRecord>,
}

/// One metric's query and its raw result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryRecord {
    /// The PromQL as sent (`$window` replaced).
    pub query: String,
    /// The sample as Prometheus returned it (`{"metric", "value"}`, a scalar
    /// `[t, "v"]`, or the empty result).
    pub sample: Value,
    /// Why the metric has no value, when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent: Option<String>,
}

/// An evaluation time: milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EvalTime(pub i64);

impl EvalTime {
    /// The current time.
    pub fn now() -> EvalTime {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        EvalTime(now.as_millis() as i64)
    }

    /// From Unix seconds as Prometheus reports sample times (`1700000000.123`).
    pub fn from_secs(secs: f64) -> EvalTime {
        EvalTime((secs * 1000.0).round() as i64)
    }

    /// RFC 3339 UTC with milliseconds (`2023-11-14T22:13:20.123Z`).
    pub fn rfc3339(self) -> String {
        let secs = self.0.div_euclid(1000);
        let whole = util::rfc3339(secs.max(0) as u64);
        format!(
            "{}.{:03}Z",
            &whole[..whole.len() - 1],
            self.0.rem_euclid(1000)
        )
    }

    /// Parses `--at`: RFC 3339 (`2023-11-14T22:13:20Z`, fractions and
    /// offsets allowed) or Unix seconds (`1700000000`, `1700000000.5`).
    pub fn parse(text: &str) -> Result<EvalTime> {
        let t = text.trim();
        let bad =
            || anyhow!("--at {text:?}: expected RFC 3339 (2026-12-03T16:00:00Z) or Unix seconds");
        if let Ok(secs) = t.parse::<f64>() {
            if !(0.0..=253_402_300_799.0).contains(&secs) {
                return Err(bad());
            }
            return Ok(EvalTime::from_secs(secs));
        }
        parse_rfc3339(t).ok_or_else(bad)
    }
}

/// Milliseconds since the epoch of an RFC 3339 date-time, or `None`.
fn parse_rfc3339(t: &str) -> Option<EvalTime> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &t[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let ms: String = frac[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis = ms.parse::<i64>().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 60 + om)
        }
        _ => return None,
    };
    // Howard Hinnant's days_from_civil.
    let (yy, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_min * 60;
    Some(EvalTime(secs * 1000 + millis))
}

/// Runs every query of `queries` at `at` (with `$window` standing for
/// `window`) and returns the snapshot. Errors are one line naming the metric.
pub fn take(
    client: &Client,
    queries: &BTreeMap<String, Query>,
    window: Duration,
    at: EvalTime,
    version: &str,
) -> Result<Snapshot> {
    let mut snap = Snapshot::new(version, (at.0.max(0) / 1000) as u64, Source::Prometheus);
    snap.availability = None;
    let eval_time = at.rfc3339();
    let mut record = Record {
        server: client.url().to_string(),
        eval_time: eval_time.clone(),
        queries: BTreeMap::new(),
    };
    for (metric, query) in queries {
        let promql = query.render(window);
        let answer = client
            .query(&promql, &eval_time)
            .with_context(|| format!("metric {metric}"))?;
        let (sample, absent) = match answer {
            Answer::Number { value, sample } => {
                if metric == slo::AVAILABILITY && !(0.0..=100.0).contains(&value) {
                    bail!("metric {metric}: the query gave {value}, not a percentage (0 to 100)");
                }
                snap.set_metric(metric, value);
                (sample, None)
            }
            Answer::Absent { reason, sample } => (sample, Some(reason)),
        };
        record.queries.insert(
            metric.clone(),
            QueryRecord {
                query: promql,
                sample,
                absent,
            },
        );
    }
    snap.prometheus = Some(record);
    Ok(snap)
}

/// The server to use: `flag`, else `$PROMETHEUS_URL`, else the config's `url`.
pub fn resolve_url(flag: Option<&str>, config: &Config) -> Option<String> {
    let env = std::env::var("PROMETHEUS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    flag.map(str::to_string)
        .or(env)
        .or_else(|| config.url.clone())
}

/// `slo snapshot` when a Prometheus server is named; `None` when none is
/// (the caller simulates).
pub fn run_snapshot(root: &Path, args: &crate::flags::SnapshotArgs) -> Result<Option<u8>> {
    let usage = |e| util::fail(exit::USAGE, e);
    let config = crate::gates::Config::load(root, args.config.as_deref())?;
    let Some(url) = resolve_url(args.prometheus.as_deref(), &config.prometheus) else {
        if args.at.is_some() {
            return Err(usage(anyhow!(
                "--at needs a Prometheus server (--prometheus URL)"
            )));
        }
        return Ok(None);
    };
    if !args.degrade.is_empty() || args.seed.is_some() {
        return Err(usage(anyhow!(
            "--seed and --degrade shape simulated snapshots; this one comes from Prometheus at {url}"
        )));
    }
    let at = match &args.at {
        Some(text) => EvalTime::parse(text).map_err(usage)?,
        None => EvalTime::now(),
    };
    let client = Client::new(&url, config.prometheus.timeout).map_err(usage)?;
    let prom = &config.prometheus;
    let snap = take(
        &client,
        &prom.queries,
        prom.window,
        at,
        &util::version_from_env(),
    )?;
    snap.save(&root.join(&args.out))?;
    let record = snap.prometheus.as_ref().expect("take records its queries");
    println!(
        "wrote SLO snapshot → {} (Prometheus at {}, evaluated at {})",
        args.out.display(),
        record.server,
        record.eval_time
    );
    for (metric, q) in &record.queries {
        if let Some(why) = &q.absent {
            println!("{metric}: no data: {why}");
        }
    }
    Ok(Some(exit::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_times_parse_both_forms() {
        let t = EvalTime::parse("2023-11-14T22:13:20Z").unwrap();
        assert_eq!(t, EvalTime(1_700_000_000_000));
        assert_eq!(EvalTime::parse("1700000000").unwrap(), t);
        assert_eq!(
            EvalTime::parse("2023-11-14T23:13:20.5+01:00").unwrap(),
            EvalTime(1_700_000_000_500)
        );
        assert_eq!(
            EvalTime::parse("1700000000.123").unwrap().rfc3339(),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            EvalTime::parse("2000-02-29T00:00:00Z").unwrap().rfc3339(),
            "2000-02-29T00:00:00.000Z"
        );
        for bad in [
            "",
            "yesterday",
            "2023-11-14",
            "2023-13-14T22:13:20Z",
            "2023-11-14T22:13:20",
            "-5",
            "1e300",
            "2023-11-14T22:13:20.Z",
        ] {
            let err = EvalTime::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("--at "), "{bad}: {err}");
        }
    }
}
