//! Stage gates: judge what a rollout stage observed against that stage's
//! objectives, and write a report with a verdict a pipeline can act on.
//!
//! The shape follows progressive-delivery tools. As in Keptn's quality gates,
//! each objective has a pass bound and an optional warning bound: an observed
//! value within the pass bound passes, one within the warning bound warns, any
//! other fails. As in baseline-comparing canary analysis, a `--baseline`
//! snapshot adds a regression check for every lower-is-better metric. As in
//! Argo Rollouts' *inconclusive*, a check without data says so (`NO_DATA`) and
//! fails the gate only when its objective is `required`. The overall result is
//! the worst verdict; `--strict` turns WARN into a failing exit.
//!
//! Objectives tighten as traffic grows, stage by stage. The defaults are
//! chosen so that an unchanged release passes every stage for any seed (a
//! test checks 2000 seeds), and the rehearsal `--degrade
//! GraphQL.reads.p95_ms=+200` fails every stage from `canary_20` on (and
//! `stage` too). A `golive.toml` in the project root, or `--config FILE`,
//! overrides them (see [`Config::parse`] for the format).
//!
//! Everything here is a pure function of its inputs except [`run`], which
//! reads files, picks the seed and clock, and writes the report.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::slo::{self, Degrade, Policy, Sim, Snapshot, Source};
use crate::util::{self, exit};

/// The built-in rollout stages, in order.
pub const STAGES: [&str; 4] = ["stage", "canary_20", "canary_50", "production"];

/// The policy check: requests stayed in their residency region.
pub const RESIDENCY: &str = "residency_pass";
/// The policy check: only persisted queries were accepted.
pub const PERSISTED: &str = "persisted_only";
/// The A2A gateway's p95 latency, as the probe measures it.
pub const A2A_P95: &str = "A2A.perform.p95_ms";

/// What an objective demands of its metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    /// Passes at or below this value (latencies, utilization).
    Max(f64),
    /// Passes at or above this value (availability).
    Min(f64),
    /// Passes when the boolean equals this (policy checks).
    Equals(bool),
}

/// One metric's objective at one stage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Objective {
    /// The pass bound.
    pub bound: Bound,
    /// The warning bound, beyond the pass bound: a value between the two
    /// warns, one beyond it fails. Without it, anything not passing fails.
    pub warn: Option<f64>,
    /// Whether a missing value fails the gate (otherwise it is `NO_DATA`).
    pub required: bool,
}

/// One rollout stage and its objectives, by metric name.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub name: String,
    pub objectives: BTreeMap<String, Objective>,
}

/// The regression check against a baseline snapshot, in percent of the
/// baseline value, for every metric with a [`Bound::Max`] objective.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Regression {
    /// Passes when the metric is at most this many percent worse.
    pub max_pct: f64,
    /// Warns up to this many percent worse; beyond, fails.
    pub warn_pct: Option<f64>,
}

/// A file the report was made from: its path as given and its sha256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub path: String,
    pub sha256: String,
}

impl FileRef {
    /// The reference of `bytes` read from `path`.
    pub fn of(path: &Path, bytes: &[u8]) -> FileRef {
        FileRef {
            path: path.display().to_string(),
            sha256: util::hex(&Sha256::digest(bytes)),
        }
    }

    /// Reads an input file (`path`, relative to `root`) with its reference:
    /// the one way the kit reads a file that a report names.
    pub fn read(root: &Path, path: &Path) -> Result<(Vec<u8>, FileRef)> {
        let bytes = std::fs::read(root.join(path))
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file = FileRef::of(path, &bytes);
        Ok((bytes, file))
    }
}

/// The gate configuration: stages in order, their objectives, the
/// regression tolerance, and the file it was read from.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub stages: Vec<Stage>,
    pub regression: Regression,
    /// The `[prometheus]` section: where real observations come from.
    pub prometheus: crate::prometheus::Config,
    /// The `[export]` section: settings of `gates export`'s manifests.
    pub export: crate::export::Settings,
    /// The TOML file it came from; `None` for the built-in defaults.
    pub file: Option<FileRef>,
}

// Per-stage (pass, warn) bounds of the defaults, in the order of STAGES.
#[rustfmt::skip]
const LATENCY_BOUNDS: [(&str, [(f64, f64); 4]); 3] = [
    //             stage           canary_20       canary_50       production
    (slo::READS,  [(400.0, 450.0), (380.0, 420.0), (370.0, 400.0), (360.0, 380.0)]),
    (slo::WRITES, [(760.0, 820.0), (740.0, 800.0), (720.0, 780.0), (700.0, 750.0)]),
    (slo::HOP,    [(320.0, 360.0), (310.0, 340.0), (300.0, 330.0), (290.0, 320.0)]),
];
#[rustfmt::skip]
const AVAILABILITY_BOUNDS: [(f64, f64); 4] = [(99.85, 99.80), (99.88, 99.85), (99.90, 99.88), (99.92, 99.90)];
#[rustfmt::skip]
const UTILIZATION_BOUNDS: [(f64, f64); 4] = [(75.0, 85.0), (72.0, 80.0), (70.0, 78.0), (68.0, 75.0)];
const A2A_BOUNDS: (f64, f64) = (500.0, 1000.0);

impl Default for Config {
    /// The built-in objectives (documented in the README).
    fn default() -> Config {
        let stages = STAGES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let max = |(pass, warn): (f64, f64)| Objective {
                    bound: Bound::Max(pass),
                    warn: Some(warn),
                    required: false,
                };
                let mut objectives = BTreeMap::new();
                for (metric, bounds) in LATENCY_BOUNDS {
                    objectives.insert(metric.to_string(), max(bounds[i]));
                }
                objectives.insert(A2A_P95.to_string(), max(A2A_BOUNDS));
                objectives.insert(slo::UTILIZATION.to_string(), max(UTILIZATION_BOUNDS[i]));
                let (pass, warn) = AVAILABILITY_BOUNDS[i];
                objectives.insert(
                    slo::AVAILABILITY.to_string(),
                    Objective {
                        bound: Bound::Min(pass),
                        warn: Some(warn),
                        required: true,
                    },
                );
                for policy in [RESIDENCY, PERSISTED] {
                    objectives.insert(
                        policy.to_string(),
                        Objective {
                            bound: Bound::Equals(true),
                            warn: None,
                            required: false,
                        },
                    );
                }
                Stage {
                    name: name.to_string(),
                    objectives,
                }
            })
            .collect();
        Config {
            stages,
            regression: Regression {
                max_pct: 30.0,
                warn_pct: Some(50.0),
            },
            prometheus: crate::prometheus::Config::default(),
            export: crate::export::Settings::default(),
            file: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    stages: Option<Vec<String>>,
    regression: Option<RawRegression>,
    #[serde(default)]
    objectives: BTreeMap<String, BTreeMap<String, RawObjective>>,
    prometheus: Option<crate::prometheus::RawConfig>,
    export: Option<crate::export::RawSettings>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegression {
    max_pct: f64,
    warn_pct: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObjective {
    max: Option<f64>,
    min: Option<f64>,
    equals: Option<bool>,
    warn: Option<f64>,
    #[serde(default)]
    required: bool,
}

impl RawObjective {
    fn check(self) -> Result<Objective, String> {
        let bound = match (self.max, self.min, self.equals) {
            (Some(x), None, None) => Bound::Max(x),
            (None, Some(x), None) => Bound::Min(x),
            (None, None, Some(b)) => Bound::Equals(b),
            _ => return Err("needs exactly one of `max`, `min`, `equals`".into()),
        };
        let finite = |x: f64| {
            x.is_finite()
                .then_some(x)
                .ok_or("bounds must be finite numbers")
        };
        match (bound, self.warn) {
            (Bound::Max(x) | Bound::Min(x), None) => {
                finite(x)?;
            }
            (Bound::Max(x), Some(w)) if finite(x)? > finite(w)? => {
                return Err(format!("warn ({w}) must not be below max ({x})"))
            }
            (Bound::Min(x), Some(w)) if finite(x)? < finite(w)? => {
                return Err(format!("warn ({w}) must not be above min ({x})"))
            }
            (Bound::Equals(_), Some(_)) => return Err("`warn` does not go with `equals`".into()),
            _ => {}
        }
        Ok(Objective {
            bound,
            warn: self.warn,
            required: self.required,
        })
    }
}

impl Config {
    /// The configuration for a project: `file` (relative to `root`) when
    /// given, else `golive.toml` in `root` when present, else the defaults.
    pub fn load(root: &Path, file: Option<&Path>) -> Result<Config> {
        let default = Path::new("golive.toml");
        let path = match file {
            Some(p) => p,
            None if root.join(default).is_file() => default,
            None => return Ok(Config::default()),
        };
        let (bytes, file) = FileRef::read(root, path)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| anyhow!("{}: not UTF-8 text", path.display()))?;
        let mut config = Config::parse(text, &path.display().to_string())?;
        config.file = Some(file);
        Ok(config)
    }

    /// Parses a gate configuration; `name` (the file) is named in any error.
    /// Every key is optional; what is given overrides the defaults:
    ///
    /// ```toml
    /// # The rollout stages, in order. A stage not built in starts with no objectives.
    /// stages = ["stage", "canary_20", "canary_50", "production"]
    ///
    /// # Regression against --baseline, in percent worse than the baseline value.
    /// [regression]
    /// max_pct = 30.0    # pass bound
    /// warn_pct = 50.0   # warning bound (optional)
    ///
    /// # One objective per metric and stage, replacing that metric's default there.
    /// [objectives.canary_20]
    /// "GraphQL.reads.p95_ms" = { max = 380, warn = 420 }
    /// availability = { min = 99.88, warn = 99.85, required = true }
    /// residency_pass = { equals = true, required = true }
    ///
    /// # Where real observations come from (see `crate::prometheus::Config`).
    /// [prometheus]
    /// url = "http://127.0.0.1:9090"
    /// window = "4s"     # golive: load per stage before querying; `$window` in queries
    /// timeout = "10s"   # per HTTP request
    /// [prometheus.queries]   # replaces the default queries as a whole
    /// "A2A.perform.p95_ms" = 'histogram_quantile(0.95, sum by (le) (rate(a2a_request_duration_seconds_bucket{route="/a2a/perform"}[$window]))) * 1000'
    ///
    /// # What `gates export` writes besides the objectives (see `crate::export::Settings`).
    /// [export]
    /// name = "mc"          # resource name prefix
    /// interval = "1m"      # between measurements; a query's `$window`
    /// ```
    pub fn parse(text: &str, name: &str) -> Result<Config> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().replace('\n', "; ");
            match e.span() {
                Some(span) => {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    anyhow!("{name}: line {line}, column {col}: {msg}")
                }
                None => anyhow!("{name}: {msg}"),
            }
        })?;
        let mut config = Config::default();
        if let Some(names) = raw.stages {
            if names.is_empty() {
                bail!("{name}: `stages` is empty");
            }
            let mut stages = Vec::new();
            for stage in names {
                if stage.is_empty() || stages.iter().any(|s: &Stage| s.name == stage) {
                    bail!("{name}: `stages` lists {stage:?} twice or empty");
                }
                let known = config.stages.iter().find(|s| s.name == stage);
                stages.push(known.cloned().unwrap_or(Stage {
                    name: stage,
                    objectives: BTreeMap::new(),
                }));
            }
            config.stages = stages;
        }
        if let Some(r) = raw.regression {
            let bad = |x: f64| !x.is_finite() || x < 0.0;
            if bad(r.max_pct) || r.warn_pct.is_some_and(|w| bad(w) || w < r.max_pct) {
                bail!("{name}: regression: need 0 <= max_pct <= warn_pct");
            }
            config.regression = Regression {
                max_pct: r.max_pct,
                warn_pct: r.warn_pct,
            };
        }
        for (stage, objectives) in raw.objectives {
            let names = config.stage_names().join(", ");
            let Some(target) = config.stages.iter_mut().find(|s| s.name == stage) else {
                bail!("{name}: objectives.{stage}: no such stage (stages: {names})");
            };
            for (metric, raw) in objectives {
                let objective = raw
                    .check()
                    .map_err(|e| anyhow!("{name}: objectives.{stage}.{metric:?}: {e}"))?;
                target.objectives.insert(metric, objective);
            }
        }
        if let Some(raw) = raw.prometheus {
            config.prometheus =
                crate::prometheus::Config::from_raw(raw).map_err(|e| anyhow!("{name}: {e}"))?;
        }
        if let Some(raw) = raw.export {
            config.export =
                crate::export::Settings::from_raw(raw).map_err(|e| anyhow!("{name}: {e}"))?;
        }
        Ok(config)
    }

    /// The stage names, in rollout order.
    pub fn stage_names(&self) -> Vec<&str> {
        self.stages.iter().map(|s| s.name.as_str()).collect()
    }

    /// The stage called `name`, or a one-line error listing the stages.
    pub fn stage(&self, name: &str) -> Result<&Stage> {
        self.stages.iter().find(|s| s.name == name).ok_or_else(|| {
            anyhow!(
                "unknown stage {name:?} (stages: {})",
                self.stage_names().join(", ")
            )
        })
    }
}

/// The seed kit's per-stage report figures (reads p95, writes p95, one-hop
/// p95, availability, utilization) that a simulated stage observes, with a
/// jitter smaller than the baseline's: a stage's p95 is taken over a longer
/// window than a snapshot's.
pub fn stage_sims(stage: &str) -> Option<[Sim; 5]> {
    let i = STAGES.iter().position(|s| *s == stage)?;
    let sim = |metric, means: [f64; 4], steps, step| Sim {
        metric,
        mean: means[i],
        steps,
        step,
    };
    Some([
        sim(slo::READS, [350.0, 330.0, 320.0, 310.0], 15, 1.0),
        sim(slo::WRITES, [700.0, 680.0, 670.0, 660.0], 20, 1.0),
        sim(slo::HOP, [260.0; 4], 15, 1.0),
        sim(slo::AVAILABILITY, [99.90, 99.92, 99.93, 99.94], 1, 0.01),
        sim(slo::UTILIZATION, [60.5, 60.3, 60.2, 60.1], 3, 0.1),
    ])
}

/// What a stage observes in simulation: [`stage_sims`] (or, for a stage not
/// built in, the baseline figures of [`slo::BASELINE`]) jittered from `seed`
/// mixed with the stage name, then `degrade`. The snapshot records `seed`;
/// the same seed and stage give the same snapshot on every platform.
pub fn simulate_stage(
    stage: &str,
    version: &str,
    epoch: u64,
    seed: u64,
    degrade: &Degrade,
) -> Snapshot {
    // FNV-1a of the stage name, so that stages draw different jitter.
    let salt = stage.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let sims = stage_sims(stage).unwrap_or(slo::BASELINE);
    slo::simulate_with(&sims, version, epoch, seed, seed ^ salt, degrade)
}

/// A verdict of one check, or of the whole gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// No data, and the objective is not required: does not affect the result.
    NoData,
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    /// As reports spell it: `NO_DATA`, `PASS`, `WARN`, `FAIL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NoData => "NO_DATA",
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stage's outcome in a rollout: its gate's verdict, or `NOT RUN` because
/// an earlier stage (or check) stopped the rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StageResult {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "WARN")]
    Warn,
    #[serde(rename = "FAIL")]
    Fail,
    /// No check had data, and none was required.
    #[serde(rename = "NO_DATA")]
    NoData,
    #[serde(rename = "NOT RUN")]
    NotRun,
}

impl From<Verdict> for StageResult {
    fn from(v: Verdict) -> StageResult {
        match v {
            Verdict::NoData => StageResult::NoData,
            Verdict::Pass => StageResult::Pass,
            Verdict::Warn => StageResult::Warn,
            Verdict::Fail => StageResult::Fail,
        }
    }
}

impl StageResult {
    /// As reports spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            StageResult::NotRun => "NOT RUN",
            StageResult::NoData => Verdict::NoData.as_str(),
            StageResult::Pass => Verdict::Pass.as_str(),
            StageResult::Warn => Verdict::Warn.as_str(),
            StageResult::Fail => Verdict::Fail.as_str(),
        }
    }
}

impl std::fmt::Display for StageResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a check judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    /// A service level: latency, availability.
    Slo,
    /// A cost figure: utilization.
    Cost,
    /// A policy check of the A2A gateway.
    Policy,
    /// Percent worse than the baseline.
    Regression,
}

/// How a check compares the observed value with its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparator {
    #[serde(rename = "<=")]
    AtMost,
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "==")]
    Equals,
}

impl Comparator {
    /// `<=`, `>=` or `==`.
    pub fn as_str(self) -> &'static str {
        match self {
            Comparator::AtMost => "<=",
            Comparator::AtLeast => ">=",
            Comparator::Equals => "==",
        }
    }
}

impl std::fmt::Display for Comparator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a report's policy values came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyFrom {
    /// The observed snapshot's `policy`.
    Slo,
    /// The A2A probe result.
    Probe,
}

/// Where a check's observed value came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The kit's seeded simulation.
    #[default]
    Simulated,
    /// The A2A probe and its load (real requests, measured by the client).
    Probe,
    /// A PromQL query (the check's `query`) against a Prometheus server.
    Prometheus,
}

/// One check: a metric's observed value against its objective.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The metric name (for a regression check, the metric compared).
    pub metric: String,
    pub kind: CheckKind,
    /// The observed value (number or boolean), `null` when there is no data.
    pub observed: Value,
    pub comparator: Comparator,
    /// The pass bound.
    pub threshold: Value,
    /// The warning bound, if the objective has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<f64>,
    /// Whether missing data fails the gate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    pub verdict: Verdict,
    /// Where `observed` came from.
    #[serde(default)]
    pub source: Origin,
    /// The PromQL of a `prometheus` value, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// The seed kit's `slo` block of a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloFigures {
    pub reads_p95_ms: Option<f64>,
    pub writes_p95_ms: Option<f64>,
    /// `null` when a Prometheus query for it gave no data.
    pub availability: Option<f64>,
}

/// The seed kit's `cost` block of a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostFigures {
    pub utilization: Option<f64>,
}

/// The seed kit's `policy` block of a report; `null` where there is no data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyFigures {
    pub residency_pass: Option<bool>,
    pub persisted_only: Option<bool>,
}

/// What a report was made from, so the evidence chain can be followed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportInputs {
    /// The `--slo` snapshot; `null` when the gate simulated the stage.
    pub slo: Option<FileRef>,
    /// Whether the observations were simulated or measured.
    pub source: Source,
    /// The seed of simulated observations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Degrade shifts in the observations (a rehearsal).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub degraded: Degrade,
    /// The `--baseline` snapshot.
    pub baseline: Option<FileRef>,
    /// The `--probe` result.
    pub probe: Option<FileRef>,
    /// The configuration file; `null` for the built-in objectives.
    pub config: Option<FileRef>,
    /// Where the policy values came from: `slo`, `probe`, or `null`.
    pub policy_from: Option<PolicyFrom>,
    /// The Prometheus server, evaluation time, queries and raw samples of
    /// the `prometheus` checks, so they can be re-run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<crate::prometheus::Record>,
}

/// A gate report. The first six keys are the seed kit's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub stage: String,
    pub ts: u64,
    pub slo: SloFigures,
    pub cost: CostFigures,
    pub policy: PolicyFigures,
    /// `PASS`, `WARN` or `FAIL`: the worst verdict of the checks.
    pub result: Verdict,
    /// Whether WARN fails the gate.
    pub strict: bool,
    pub checks: Vec<Check>,
    /// One line per check that warned or failed.
    pub reasons: Vec<String>,
    pub inputs: ReportInputs,
}

impl Report {
    /// Whether the gate lets the rollout go on: PASS, or WARN when not strict.
    pub fn passed(&self) -> bool {
        self.result == Verdict::Pass || (self.result == Verdict::Warn && !self.strict)
    }
}

/// What [`judge`] looks at. The file references only go into the report.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    /// What the stage observed.
    pub observed: &'a Snapshot,
    /// The file `observed` was read from; `None` when simulated.
    pub observed_file: Option<FileRef>,
    /// The baseline for the regression check.
    pub baseline: Option<&'a Snapshot>,
    pub baseline_file: Option<FileRef>,
    /// Policy results of the A2A probe, used when `observed` has none.
    pub probe: Option<Policy>,
    pub probe_file: Option<FileRef>,
    /// Metrics of `observed` that the A2A probe measured (in a snapshot
    /// that is otherwise simulated).
    pub probe_metrics: Vec<String>,
}

impl Inputs<'_> {
    /// Where the value of `metric` in `observed` came from, with its query.
    fn origin(&self, metric: &str) -> (Origin, Option<String>) {
        let record = self.observed.prometheus.as_ref();
        if let Some(q) = record.and_then(|r| r.queries.get(metric)) {
            return (Origin::Prometheus, Some(q.query.clone()));
        }
        if self.probe_metrics.iter().any(|m| m == metric) {
            return (Origin::Probe, None);
        }
        (Origin::of(self.observed.source), None)
    }
}

impl Origin {
    /// The origin of a snapshot's values.
    pub fn of(source: Source) -> Origin {
        match source {
            Source::Simulated => Origin::Simulated,
            Source::Measured => Origin::Probe,
            Source::Prometheus => Origin::Prometheus,
        }
    }
}

/// Judges `stage` (a stage of `config`) on `inputs`, at time `ts`. Pure.
pub fn judge(
    config: &Config,
    stage: &str,
    inputs: &Inputs<'_>,
    strict: bool,
    ts: u64,
) -> Result<Report> {
    let objectives = &config.stage(stage)?.objectives;
    let observed = inputs.observed;
    let (policy, policy_from) = match (observed.policy, inputs.probe) {
        (Some(p), _) => (Some(p), Some(PolicyFrom::Slo)),
        (None, Some(p)) => (Some(p), Some(PolicyFrom::Probe)),
        (None, None) => (None, None),
    };
    let policy_value = |metric: &str| match metric {
        RESIDENCY => policy.map(|p| p.residency_pass),
        PERSISTED => policy.map(|p| p.persisted_only),
        _ => None,
    };

    let mut checks = Vec::new();
    for (metric, objective) in objectives {
        let kind = match metric.as_str() {
            RESIDENCY | PERSISTED => CheckKind::Policy,
            slo::UTILIZATION => CheckKind::Cost,
            _ => CheckKind::Slo,
        };
        let (observed_value, origin) = match objective.bound {
            Bound::Equals(_) => {
                let origin = match policy_from {
                    Some(PolicyFrom::Probe) => Origin::Probe,
                    _ => Origin::of(observed.source),
                };
                (policy_value(metric).map(Value::from), (origin, None))
            }
            _ => (
                observed.metric(metric).map(Value::from),
                inputs.origin(metric),
            ),
        };
        checks.push(check(metric, kind, observed_value, objective).from(origin));
    }
    if let Some(baseline) = inputs.baseline {
        let r = config.regression;
        let regression = Objective {
            bound: Bound::Max(r.max_pct),
            warn: r.warn_pct,
            required: false,
        };
        for (metric, objective) in objectives {
            let (Bound::Max(_), Some(now), Some(base)) = (
                objective.bound,
                observed.metric(metric),
                baseline.metric(metric),
            ) else {
                continue;
            };
            if base > 0.0 {
                let pct = (((now - base) / base * 100.0) * 10.0).round() / 10.0;
                let origin = inputs.origin(metric);
                checks.push(
                    check(
                        metric,
                        CheckKind::Regression,
                        Some(Value::from(pct)),
                        &regression,
                    )
                    .from(origin),
                );
            }
        }
    }

    let result = checks
        .iter()
        .map(|c| c.verdict)
        .max()
        .unwrap_or(Verdict::Pass)
        .max(Verdict::Pass);
    let reasons = checks.iter().filter_map(reason).collect();
    Ok(Report {
        stage: stage.to_string(),
        ts,
        slo: SloFigures {
            reads_p95_ms: observed.metric(slo::READS),
            writes_p95_ms: observed.metric(slo::WRITES),
            availability: observed.availability,
        },
        cost: CostFigures {
            utilization: observed.utilization,
        },
        policy: PolicyFigures {
            residency_pass: policy.map(|p| p.residency_pass),
            persisted_only: policy.map(|p| p.persisted_only),
        },
        result,
        strict,
        checks,
        reasons,
        inputs: ReportInputs {
            slo: inputs.observed_file.clone(),
            source: observed.source,
            seed: observed.seed,
            degraded: observed.degraded.clone(),
            baseline: inputs.baseline_file.clone(),
            probe: inputs.probe_file.clone(),
            config: config.file.clone(),
            policy_from,
            prometheus: observed.prometheus.clone(),
        },
    })
}

fn check(metric: &str, kind: CheckKind, observed: Option<Value>, objective: &Objective) -> Check {
    let (comparator, threshold) = match objective.bound {
        Bound::Max(x) => (Comparator::AtMost, json!(x)),
        Bound::Min(x) => (Comparator::AtLeast, json!(x)),
        Bound::Equals(b) => (Comparator::Equals, json!(b)),
    };
    // Whether the observed value is within `bound`, in the objective's direction.
    let within = |v: &Value, bound: f64| match (objective.bound, v.as_f64()) {
        (Bound::Max(_), Some(x)) => x <= bound,
        (Bound::Min(_), Some(x)) => x >= bound,
        _ => false,
    };
    let verdict = match (&observed, objective.bound) {
        (None, _) if objective.required => Verdict::Fail,
        (None, _) => Verdict::NoData,
        (Some(v), Bound::Equals(b)) if v.as_bool() == Some(b) => Verdict::Pass,
        (Some(_), Bound::Equals(_)) => Verdict::Fail,
        (Some(v), Bound::Max(pass) | Bound::Min(pass)) if within(v, pass) => Verdict::Pass,
        (Some(v), _) if objective.warn.is_some_and(|w| within(v, w)) => Verdict::Warn,
        (Some(_), _) => Verdict::Fail,
    };
    Check {
        metric: metric.to_string(),
        kind,
        observed: observed.unwrap_or(Value::Null),
        comparator,
        threshold,
        warn: objective.warn,
        required: objective.required,
        verdict,
        source: Origin::Simulated,
        query: None,
    }
}

impl Check {
    fn from(mut self, (source, query): (Origin, Option<String>)) -> Check {
        self.source = source;
        self.query = query;
        self
    }
}

/// The one-line reason of a check that warned or failed.
fn reason(c: &Check) -> Option<String> {
    if matches!(c.verdict, Verdict::Pass | Verdict::NoData) {
        return None;
    }
    if c.observed.is_null() {
        return Some(format!(
            "{}: no data, and the objective is required",
            c.metric
        ));
    }
    // Numbers as Rust shows them: 518, not JSON's 518.0.
    let show = |v: &Value| v.as_f64().map_or_else(|| v.to_string(), |x| x.to_string());
    let (op, pass) = (c.comparator, show(&c.threshold));
    let objective = match c.warn {
        Some(w) => format!("pass {op} {pass}, warn {op} {w}"),
        None => format!("{op} {pass}"),
    };
    let what = if c.verdict == Verdict::Warn {
        "is in the warning band"
    } else {
        "fails"
    };
    let (metric, observed) = (&c.metric, show(&c.observed));
    Some(if c.kind == CheckKind::Regression {
        format!("{metric} is {observed}% worse than the baseline, which {what} ({objective})")
    } else {
        format!("{metric} = {observed} {what} ({objective})")
    })
}

/// The policy results of an A2A probe result file (`{"policy": {...}, ...}`).
pub fn parse_probe(bytes: &[u8], name: &str) -> Result<Policy> {
    #[derive(Deserialize)]
    struct Probe {
        policy: Policy,
    }
    let probe: Probe = serde_json::from_slice(bytes)
        .with_context(|| format!("{name}: not an A2A probe result with a `policy`"))?;
    Ok(probe.policy)
}

/// `gates` from the command line: judge one stage, write its report, and
/// exit 0 (PASS, or WARN without `--strict`) or 3 (FAIL, or WARN under `--strict`).
pub fn run(root: &Path, args: &crate::flags::GatesArgs) -> Result<u8> {
    let config = Config::load(root, args.config.as_deref())?;
    config
        .stage(&args.stage)
        .map_err(|e| util::fail(exit::USAGE, e))?;
    let ts = util::now_epoch()?;
    let (observed, observed_file) = match &args.slo {
        Some(path) => {
            let (bytes, file) = FileRef::read(root, path)?;
            (Snapshot::parse(&bytes, &file.path)?, Some(file))
        }
        None => {
            let degrade =
                slo::parse_degrade(&args.degrade).map_err(|e| util::fail(exit::USAGE, e))?;
            let seed = slo::resolve_seed(args.seed)?;
            let version = util::version_from_env();
            (
                simulate_stage(&args.stage, &version, ts, seed, &degrade),
                None,
            )
        }
    };
    let (baseline, baseline_file) = match &args.baseline {
        Some(path) => {
            let (bytes, file) = FileRef::read(root, path)?;
            (Some(Snapshot::parse(&bytes, &file.path)?), Some(file))
        }
        None => (None, None),
    };
    let (probe, probe_file) = match &args.probe {
        Some(path) => {
            let (bytes, file) = FileRef::read(root, path)?;
            (Some(parse_probe(&bytes, &file.path)?), Some(file))
        }
        None => (None, None),
    };
    let inputs = Inputs {
        observed: &observed,
        observed_file,
        baseline: baseline.as_ref(),
        baseline_file,
        probe,
        probe_file,
        probe_metrics: Vec::new(),
    };
    let report = judge(&config, &args.stage, &inputs, args.strict, ts)?;
    let value = serde_json::to_value(&report).context("cannot serialise the report")?;
    // A run killed while writing the report leaves its temporary file, which
    // `evidence pack` would take for evidence: it goes before this one is written.
    util::remove_stale_tmp(&root.join(&args.report))?;
    util::write_json(&root.join(&args.report), &value)?;
    util::println_stdout(&format!("wrote gates report → {}", args.report.display()))?;

    let result = report.result;
    let why = report.reasons.join("; ");
    if report.passed() {
        if report.result == Verdict::Warn {
            util::println_stdout(&format!("{}: WARN: {why}", report.stage))?;
        } else {
            util::println_stdout(&format!("{}: PASS", report.stage))?;
        }
        return Ok(exit::OK);
    }
    let strict = if report.result == Verdict::Warn {
        " (--strict)"
    } else {
        ""
    };
    Err(util::fail(
        exit::GATE_FAILED,
        anyhow!("gate {}: {result}{strict}: {why}", report.stage),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge_simple(stage: &str, observed: &Snapshot, baseline: Option<&Snapshot>) -> Report {
        let inputs = Inputs {
            observed,
            observed_file: None,
            baseline,
            baseline_file: None,
            probe: None,
            probe_file: None,
            probe_metrics: Vec::new(),
        };
        judge(&Config::default(), stage, &inputs, true, 0).unwrap()
    }

    #[test]
    fn unchanged_release_passes_every_stage_for_any_seed() {
        for seed in 0..2000 {
            let baseline = slo::simulate("v", 0, seed, &Degrade::new());
            let other = slo::simulate("v", 0, seed.wrapping_mul(7919) + 1, &Degrade::new());
            for stage in STAGES {
                let observed = simulate_stage(stage, "v", 0, seed, &Degrade::new());
                for (what, obs, base) in [
                    ("simulated stage", &observed, Some(&baseline)),
                    ("simulated stage, other baseline", &observed, Some(&other)),
                    ("baseline snapshot as --slo", &baseline, None),
                    ("baseline snapshot against another", &baseline, Some(&other)),
                ] {
                    let r = judge_simple(stage, obs, base);
                    assert_eq!(
                        r.result,
                        Verdict::Pass,
                        "seed {seed}, {stage}, {what}: {:?}",
                        r.reasons
                    );
                    assert!(r.passed());
                }
            }
        }
    }

    #[test]
    fn degraded_rehearsal_fails_canary_20_for_any_seed() {
        let degrade = slo::parse_degrade(&["GraphQL.reads.p95_ms=+200".into()]).unwrap();
        let profile = slo::parse_degrade(&["bad-release".into()]).unwrap();
        for seed in 0..2000 {
            let baseline = slo::simulate("v", 0, seed, &Degrade::new());
            for d in [&degrade, &profile] {
                for stage in STAGES {
                    let observed = simulate_stage(stage, "v", 0, seed, d);
                    let r = judge_simple(stage, &observed, Some(&baseline));
                    assert_eq!(r.result, Verdict::Fail, "seed {seed}, {stage}");
                    let snap = slo::simulate("v", 0, seed, d);
                    assert_eq!(judge_simple(stage, &snap, None).result, Verdict::Fail);
                }
            }
        }
    }

    #[test]
    fn stage_simulation_is_pinned() {
        let s = simulate_stage("canary_20", "v", 0, 42, &Degrade::new());
        let again = simulate_stage("canary_20", "v", 0, 42, &Degrade::new());
        assert_eq!(s, again);
        assert_ne!(s, simulate_stage("canary_50", "v", 0, 42, &Degrade::new()));
        assert_eq!(s.seed, Some(42));
    }

    #[test]
    fn verdicts_follow_the_bounds() {
        let max = Objective {
            bound: Bound::Max(10.0),
            warn: Some(20.0),
            required: false,
        };
        let v = |x: f64| check("m", CheckKind::Slo, Some(json!(x)), &max).verdict;
        assert_eq!(v(10.0), Verdict::Pass);
        assert_eq!(v(15.0), Verdict::Warn);
        assert_eq!(v(20.0), Verdict::Warn);
        assert_eq!(v(20.5), Verdict::Fail);
        let min = Objective {
            bound: Bound::Min(99.9),
            warn: None,
            required: true,
        };
        assert_eq!(
            check("a", CheckKind::Slo, Some(json!(99.95)), &min).verdict,
            Verdict::Pass
        );
        assert_eq!(
            check("a", CheckKind::Slo, Some(json!(99.89)), &min).verdict,
            Verdict::Fail
        );
        assert_eq!(
            check("a", CheckKind::Slo, None, &min).verdict,
            Verdict::Fail
        );
        let eq = Objective {
            bound: Bound::Equals(true),
            warn: None,
            required: false,
        };
        assert_eq!(
            check("p", CheckKind::Policy, None, &eq).verdict,
            Verdict::NoData
        );
        assert_eq!(
            check("p", CheckKind::Policy, Some(json!(false)), &eq).verdict,
            Verdict::Fail
        );
        assert_eq!(
            check("p", CheckKind::Policy, Some(json!(true)), &eq).verdict,
            Verdict::Pass
        );
    }

    #[test]
    fn policy_comes_from_the_snapshot_else_the_probe() {
        let observed = simulate_stage("stage", "v", 0, 1, &Degrade::new());
        let bad = Policy {
            residency_pass: false,
            persisted_only: true,
        };
        let mut inputs = Inputs {
            observed: &observed,
            observed_file: None,
            baseline: None,
            baseline_file: None,
            probe: Some(bad),
            probe_file: None,
            probe_metrics: Vec::new(),
        };
        let r = judge(&Config::default(), "stage", &inputs, false, 0).unwrap();
        assert_eq!(r.result, Verdict::Fail);
        assert_eq!(r.inputs.policy_from, Some(PolicyFrom::Probe));
        assert_eq!(r.reasons, ["residency_pass = false fails (== true)"]);
        let mut with_policy = observed.clone();
        with_policy.policy = Some(Policy {
            residency_pass: true,
            persisted_only: true,
        });
        inputs.observed = &with_policy;
        let r = judge(&Config::default(), "stage", &inputs, false, 0).unwrap();
        assert_eq!(r.result, Verdict::Pass);
        assert_eq!(r.inputs.policy_from, Some(PolicyFrom::Slo));
    }

    #[test]
    fn config_overrides_and_validates() {
        let text = r#"
            stages = ["stage", "canary_5", "production"]
            [regression]
            max_pct = 10
            [objectives.canary_5]
            "GraphQL.reads.p95_ms" = { max = 300 }
            [objectives.production]
            availability = { min = 99.99, warn = 99.95, required = true }
        "#;
        let c = Config::parse(text, "golive.toml").unwrap();
        assert_eq!(c.stage_names(), ["stage", "canary_5", "production"]);
        assert_eq!(c.stage("canary_5").unwrap().objectives.len(), 1);
        assert_eq!(
            c.regression,
            Regression {
                max_pct: 10.0,
                warn_pct: None
            }
        );
        let prod = &c.stage("production").unwrap().objectives;
        assert_eq!(prod["availability"].bound, Bound::Min(99.99));
        assert_eq!(
            prod[slo::READS],
            Config::default().stage("production").unwrap().objectives[slo::READS]
        );

        for (text, needle) in [
            ("stages = [", "golive.toml: line 1, column"),
            (
                "colour = 1",
                "golive.toml: line 1, column 1: unknown field `colour`",
            ),
            (
                "[objectives.nope]\na = { max = 1 }",
                "objectives.nope: no such stage",
            ),
            (
                "[objectives.stage]\na = { max = 1, min = 0 }",
                "exactly one of",
            ),
            (
                "[objectives.stage]\na = { max = 10, warn = 5 }",
                "warn (5) must not be below max (10)",
            ),
            (
                "[objectives.stage]\na = { min = 10, warn = 50 }",
                "must not be above min",
            ),
            (
                "[objectives.stage]\na = { equals = true, warn = 5 }",
                "does not go with",
            ),
            ("[regression]\nmax_pct = 10\nwarn_pct = 5", "regression"),
            ("stages = []", "`stages` is empty"),
        ] {
            let err = format!("{:#}", Config::parse(text, "golive.toml").unwrap_err());
            assert!(err.contains(needle), "{text:?}: {err}");
            assert!(err.starts_with("golive.toml: "), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn unknown_stage_is_an_error() {
        let s = simulate_stage("stage", "v", 0, 1, &Degrade::new());
        let inputs = Inputs {
            observed: &s,
            observed_file: None,
            baseline: None,
            baseline_file: None,
            probe: None,
            probe_file: None,
            probe_metrics: Vec::new(),
        };
        let err = judge(&Config::default(), "prod", &inputs, false, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown stage \"prod\" (stages: stage, canary_20, canary_50, production)"
        );
    }
}
