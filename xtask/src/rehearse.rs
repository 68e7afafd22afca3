//! The go-live rehearsal as a library call that always gives the same
//! answer, for an adopting repository's snapshot tests.
//!
//! A team wants a change in its gate reports (a new objective, a tighter
//! bound, a new verdict) to show up in review like a code change. `golive`
//! cannot give that: it picks a seed, reads the clock and measures the
//! gateway. [`rehearse`] runs the same gates on the same simulated
//! observations with a fixed seed and epoch, writes no file, and leaves out
//! what is measured: the gateway's latency (its check is `NO_DATA` unless
//! the configuration makes it required) and the gateway's address. The
//! gateway is still probed in-process, since its policy decisions are
//! deterministic and feed the policy checks. What comes back serialises, so
//! an adopter's test is one line:
//!
//! ```no_run
//! # let root = std::path::Path::new(".");
//! let rehearsal = xtask::rehearse::rehearse(root, &Default::default()).unwrap();
//! // insta::assert_yaml_snapshot!(rehearsal);
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

pub use crate::gates::StageResult;
use crate::gates::{self, Report};
use crate::{a2a, slo};

/// The fixed epoch of a rehearsal (2023-11-14T22:13:20Z), as `SOURCE_DATE_EPOCH`.
pub const EPOCH: u64 = 1_700_000_000;
/// The fixed seed of a rehearsal's simulated observations.
pub const SEED: u64 = 1;

/// What to rehearse. The default is the whole rollout of the project's gate
/// configuration, with the fixed [`SEED`] and [`EPOCH`].
#[derive(Debug, Clone)]
pub struct Options {
    /// The gate configuration, relative to the root (default: `golive.toml`
    /// in the root when present, else the built-in objectives).
    pub config: Option<PathBuf>,
    /// The release version the reports name.
    pub version: String,
    /// The seed of the simulated observations.
    pub seed: u64,
    /// The time every report carries.
    pub epoch: u64,
    /// The stages to run, in rollout order (default: all of the configuration's).
    pub stages: Option<Vec<String>>,
    /// Shifts of the simulated observations, as `--degrade` takes them
    /// (`GraphQL.reads.p95_ms=+200`, `bad-release`).
    pub degrade: Vec<String>,
    /// Whether WARN fails a gate.
    pub strict: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            config: None,
            version: "v0.3.2-mc".to_string(),
            seed: SEED,
            epoch: EPOCH,
            stages: None,
            degrade: Vec::new(),
            strict: false,
        }
    }
}

/// One stage of a rehearsal.
#[derive(Debug, Clone, Serialize)]
pub struct StageOutcome {
    pub stage: String,
    pub result: StageResult,
    /// The gate report; absent when the stage did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

/// What [`rehearse`] found: every stage in rollout order.
#[derive(Debug, Clone, Serialize)]
pub struct Rehearsal {
    pub version: String,
    pub seed: u64,
    pub strict: bool,
    /// Whether every stage let the rollout go on.
    pub passed: bool,
    pub stages: Vec<StageOutcome>,
}

/// Rehearses the rollout of the project at `root` as `golive` does (a failed
/// stage stops it; later stages are `NOT RUN`), deterministically: see the
/// module documentation.
pub fn rehearse(root: &Path, opts: &Options) -> Result<Rehearsal> {
    let judge = Judge::new(root, opts)?;
    let stages = match &opts.stages {
        Some(list) => crate::golive::parse_stages(list, &judge.config)?,
        None => judge
            .config
            .stage_names()
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let mut outcomes = Vec::new();
    let mut stopped = false;
    for stage in stages {
        if stopped {
            outcomes.push(StageOutcome {
                stage,
                result: StageResult::NotRun,
                report: None,
            });
            continue;
        }
        let report = judge.judge(&stage)?;
        stopped = !report.passed();
        outcomes.push(StageOutcome {
            stage,
            result: report.result.into(),
            report: Some(report),
        });
    }
    Ok(Rehearsal {
        version: opts.version.clone(),
        seed: opts.seed,
        strict: opts.strict,
        passed: !stopped,
        stages: outcomes,
    })
}

/// The gate report of one `stage` of the project at `root`, judged
/// deterministically as in [`rehearse`] (whatever earlier stages would say).
pub fn rehearse_stage(root: &Path, stage: &str, opts: &Options) -> Result<Report> {
    Judge::new(root, opts)?.judge(stage)
}

/// What every stage of a rehearsal is judged with.
struct Judge<'a> {
    opts: &'a Options,
    config: gates::Config,
    degrade: slo::Degrade,
    baseline: slo::Snapshot,
    policy: slo::Policy,
}

impl<'a> Judge<'a> {
    fn new(root: &Path, opts: &'a Options) -> Result<Judge<'a>> {
        let config = gates::Config::load(root, opts.config.as_deref())?;
        let degrade = slo::parse_degrade(&opts.degrade)?;
        let baseline = slo::simulate(&opts.version, opts.epoch, opts.seed, &slo::Degrade::new());
        Ok(Judge {
            opts,
            config,
            degrade,
            baseline,
            policy: probe_policy()?,
        })
    }

    fn judge(&self, stage: &str) -> Result<Report> {
        let o = self.opts;
        let observed = gates::simulate_stage(stage, &o.version, o.epoch, o.seed, &self.degrade);
        let inputs = gates::Inputs {
            observed: &observed,
            observed_file: None,
            baseline: Some(&self.baseline),
            baseline_file: None,
            probe: Some(self.policy),
            probe_file: None,
            probe_metrics: Vec::new(),
        };
        gates::judge(&self.config, stage, &inputs, o.strict, o.epoch)
    }
}

/// The policy checks of the in-process gateway's probe: deterministic, unlike
/// its address and latency, which are left out.
fn probe_policy() -> Result<slo::Policy> {
    let gateway = a2a::Gateway::start(a2a::GatewayOptions::default())
        .context("cannot start the in-process A2A gateway")?;
    let probed = a2a::probe(&gateway.url());
    gateway
        .shutdown()
        .context("cannot stop the in-process A2A gateway")?;
    Ok(probed?.policy)
}
