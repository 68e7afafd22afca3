//! `golive` with Prometheus: every stage drives load through the gateway for
//! the observation window, waits until Prometheus has scraped the gateway
//! after the load, then runs the queries with `$window` covering exactly that
//! stage's traffic.
//!
//! "Exactly" rests on one invariant: before a stage's load starts, Prometheus
//! holds a sample of the gateway taken after all earlier traffic (the
//! previous stage's end, or the first wait after the probe). A query
//! evaluated at the first scrape after this stage's load, over the range back
//! to that earlier sample, sees this stage's requests and no others. Scrapes
//! are detected with `max(timestamp(a2a_build_info))`, the time of the newest
//! sample of any gateway the server scrapes.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::client::{Answer, Client};
use super::snapshot::{take, EvalTime};
use super::Config;
use crate::slo::{self, Snapshot};

/// The query that tells when Prometheus last scraped a gateway.
pub const SCRAPE_QUERY: &str = "max(timestamp(a2a_build_info))";
/// Requests per second of window the stage load may send at most (a bound,
/// not a rate: the load stops early when they are sent).
const REQUESTS_PER_SECOND: u64 = 250;
/// Connections of the stage load.
const CONCURRENCY: u64 = 4;

/// Watches one gateway through one Prometheus server, stage by stage.
pub struct Observer<'a> {
    client: &'a Client,
    config: &'a Config,
    gateway: String,
    /// The newest scrape known to follow all traffic so far.
    since: EvalTime,
}

/// What one stage's observation found.
pub struct Observation {
    /// The snapshot of the configured queries.
    pub snapshot: Snapshot,
    /// Requests the stage's load sent, and how many failed.
    pub requests: u64,
    pub errors: u64,
}

impl<'a> Observer<'a> {
    /// Waits until Prometheus has scraped the gateway at `gateway` (its base
    /// URL) after everything sent to it so far.
    pub fn start(client: &'a Client, config: &'a Config, gateway: &str) -> Result<Observer<'a>> {
        let since = wait_for_scrape(client, EvalTime::now(), gateway, config.scrape_wait)?;
        Ok(Observer {
            client,
            config,
            gateway: gateway.to_string(),
            since,
        })
    }

    /// Drives load for the window, waits for the scrape after it, and takes
    /// the snapshot over this stage's range.
    pub fn stage(&mut self, version: &str) -> Result<Observation> {
        let window = self.config.window;
        let cap = REQUESTS_PER_SECOND.saturating_mul(window.as_secs().max(1));
        let started = Instant::now();
        let load = crate::a2a::load(&self.gateway, cap, CONCURRENCY, window)?;
        // A capped load may end early: the window is the stage's length.
        if let Some(rest) = window.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
        let at = wait_for_scrape(
            self.client,
            EvalTime::now(),
            &self.gateway,
            self.config.scrape_wait,
        )?;
        // One millisecond more than the distance back to the last scrape
        // before the load, so that sample is inside the range whether the
        // server's ranges are closed (Prometheus 2) or left-open (3).
        let range = Duration::from_millis((at.0 - self.since.0 + 1).max(1) as u64);
        let snapshot = take(self.client, &self.config.queries, range, at, version)?;
        self.since = at;
        Ok(Observation {
            snapshot,
            requests: load.requests,
            errors: load.errors,
        })
    }
}

/// Waits (at most `wait`) until the newest gateway sample in Prometheus is at
/// or after `after`; returns that sample's time.
pub fn wait_for_scrape(
    client: &Client,
    after: EvalTime,
    gateway: &str,
    wait: Duration,
) -> Result<EvalTime> {
    let started = Instant::now();
    loop {
        let seen = match client.query(SCRAPE_QUERY, &EvalTime::now().rfc3339())? {
            Answer::Number { value, .. } => Some(EvalTime::from_secs(value)),
            Answer::Absent { .. } => None,
        };
        match seen {
            Some(t) if t >= after => return Ok(t),
            _ if started.elapsed() >= wait => {
                let last = seen.map_or("never".to_string(), |t| format!("last at {}", t.rfc3339()));
                bail!(
                    "Prometheus at {} has not scraped the gateway since {} (waited {}; {SCRAPE_QUERY}: {last}): make {gateway}/metrics a scrape target with a scrape_interval of 1s to 5s",
                    client.url(),
                    after.rfc3339(),
                    super::show_duration(wait)
                );
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Puts the Prometheus metrics of `from` into `observed`: a metric with a
/// value replaces the simulated or probed one, a metric without data is
/// removed (so its check says `NO_DATA`), and the record goes along.
pub fn overlay(observed: &mut Snapshot, from: &Snapshot) {
    let Some(record) = &from.prometheus else {
        return;
    };
    for metric in record.queries.keys() {
        match from.metric(metric) {
            Some(v) => observed.set_metric(metric, v),
            None => match metric.as_str() {
                slo::AVAILABILITY => observed.availability = None,
                slo::UTILIZATION => observed.utilization = None,
                m => {
                    observed.endpoints.remove(m);
                }
            },
        }
    }
    observed.prometheus = Some(record.clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::{QueryRecord, Record};

    #[test]
    fn overlay_replaces_and_removes_what_was_queried() {
        let mut observed = crate::gates::simulate_stage("stage", "v", 0, 1, &Default::default());
        observed.set_metric(crate::gates::A2A_P95, 3.0);
        let mut from = Snapshot::new("v", 0, slo::Source::Prometheus);
        from.availability = None;
        from.set_metric(crate::gates::A2A_P95, 1234.5);
        let q = |query: &str| QueryRecord {
            query: query.to_string(),
            sample: serde_json::Value::Null,
            absent: None,
        };
        from.prometheus = Some(Record {
            server: "http://p".into(),
            eval_time: "t".into(),
            queries: [
                (crate::gates::A2A_P95.to_string(), q("p95")),
                (slo::AVAILABILITY.to_string(), q("avail")),
            ]
            .into(),
        });
        overlay(&mut observed, &from);
        assert_eq!(observed.metric(crate::gates::A2A_P95), Some(1234.5));
        assert_eq!(observed.availability, None);
        assert!(observed.metric(slo::READS).is_some());
        assert_eq!(observed.prometheus, from.prometheus);
    }
}
