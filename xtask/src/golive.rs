//! `cargo xtask golive`: the seed Quickstart's seven manual steps in one
//! process. In order: build facts, optional pre-merge checks, the A2A gateway
//! (in-process, or `$A2A_URL`) probed and loaded, the SLO baseline, the gate of
//! every stage in rollout order (a failed stage stops the rollout there), the
//! signed evidence bundle (packed, then verified), and the reports.
//!
//! With a Prometheus server (`--prometheus`, `$PROMETHEUS_URL` or the config),
//! the in-process gateway keeps running through the stages, and each stage's
//! queried metrics come from Prometheus after a window of load
//! ([`crate::prometheus::observe`]); every check records where its number came from.
//!
//! Every output is written atomically, so a second run replaces its own files
//! for the version whole, and an interrupted run leaves the previous ones. Only
//! files with the names this task writes are ever replaced or removed; user
//! files in `out/` (such as `out/sample.txt`) are packed, never touched.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use xshell::{cmd, Shell};

use crate::attest::{self, keys::EvidenceKey};
use crate::flags::{Check, GoliveArgs};
use crate::report::{self, CheckRow, CheckRun, EvidenceRow, Facts, GatewayRow, StageRow, Summary};
use crate::util::{self, exit};
use crate::{a2a, evidence, gates, prometheus, slo};

impl Check {
    /// The check's name in reports (`fmt`, `clippy`, `test`).
    pub fn name(self) -> &'static str {
        match self {
            Check::Fmt => "fmt",
            Check::Clippy => "clippy",
            Check::Test => "test",
        }
    }

    /// The command the check runs, as an argument vector.
    pub fn argv(self) -> &'static [&'static str] {
        match self {
            Check::Fmt => &["cargo", "fmt", "--all", "--", "--check"],
            Check::Clippy => &[
                "cargo",
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            Check::Test => &["cargo", "test", "--workspace"],
        }
    }
}

/// Shows progress: a spinner on a terminal, plain lines elsewhere (CI logs).
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    done: usize,
    started: Instant,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        let tty = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let bar = tty.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(80));
            bar
        });
        Progress {
            bar,
            total,
            done: 0,
            started: Instant::now(),
        }
    }

    /// Announces the next step.
    pub fn step(&mut self, what: &str) {
        self.done += 1;
        let line = format!("[{}/{}] {what}", self.done, self.total);
        match &self.bar {
            Some(bar) => {
                bar.set_message(line);
            }
            None => eprintln!("golive: {line}"),
        }
    }

    /// Prints a line without garbling the spinner.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("golive: {line}")),
            None => eprintln!("golive: {line}"),
        }
    }

    /// Runs `f` with the spinner out of the way (for child processes that print).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        eprintln!("golive: done in {} ms", self.started.elapsed().as_millis());
    }
}

/// Build facts: commit and dirty flag (when `root` is a git work tree), the
/// compiler, and the sha256 of `Cargo.lock`.
pub fn build_facts(sh: &Shell, root: &Path) -> Facts {
    let git = |args: &[&str]| {
        cmd!(sh, "git {args...}")
            .quiet()
            .ignore_stderr()
            .read()
            .ok()
    };
    let commit = git(&["rev-parse", "--verify", "HEAD"]);
    let dirty = commit
        .as_ref()
        .and_then(|_| git(&["status", "--porcelain"]))
        .map(|s| !s.trim().is_empty());
    let rustc = cmd!(sh, "rustc --version")
        .quiet()
        .ignore_stderr()
        .read()
        .ok();
    let lock = root.join("Cargo.lock");
    let cargo_lock_sha256 = lock
        .is_file()
        .then(|| evidence::hash_file(&lock, &mut vec![0; 64 * 1024]).ok())
        .flatten()
        .map(|(sha, _)| sha);
    Facts {
        commit,
        dirty,
        rustc,
        cargo_lock_sha256,
    }
}

/// The checks of `--checks`, each once, in the order first named.
pub fn unique_checks(checks: &[Check]) -> Vec<Check> {
    let mut out = Vec::new();
    for &c in checks {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// Runs one pre-merge check in the shell's directory, its output going to the terminal.
pub fn run_check(sh: &Shell, check: Check) -> CheckRun {
    let started = Instant::now();
    let (program, args) = check.argv().split_first().expect("a command");
    let ok = cmd!(sh, "{program} {args...}").quiet().run().is_ok();
    CheckRun {
        name: check.name().to_string(),
        command: check.argv().join(" "),
        ok,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// The paths one run writes for `version`.
pub struct Outputs {
    pub build: PathBuf,
    pub checks: PathBuf,
    pub probe: PathBuf,
    pub measured: PathBuf,
    pub decisions: PathBuf,
    /// The decision log while the gateway writes it, renamed to `decisions`.
    pub decisions_partial: PathBuf,
    pub baseline: PathBuf,
    pub bundle: PathBuf,
    pub markdown: PathBuf,
    pub html: PathBuf,
    /// The signed verification summary (an Ed25519 key only).
    pub attestation: PathBuf,
}

impl Outputs {
    pub fn new(version: &str) -> Outputs {
        let out = |name: String| PathBuf::from("out").join(name);
        let dist = |name: String| PathBuf::from("dist").join(name);
        Outputs {
            build: out(format!("build-{version}.json")),
            checks: out(format!("checks-{version}.json")),
            probe: out(format!("a2a-probe-{version}.json")),
            measured: out(format!("slo-{version}-a2a-measured.json")),
            decisions: out(format!("a2a-decisions-{version}.jsonl")),
            decisions_partial: out(format!("a2a-decisions-{version}.jsonl.partial")),
            baseline: out(format!("slo-{version}-baseline.json")),
            bundle: dist(format!("evidence-{version}.json")),
            markdown: dist(format!("golive-{version}.md")),
            html: dist(format!("golive-{version}.html")),
            attestation: attest::attestation_path(version),
        }
    }

    /// Every file this task can write for the version, with the gate reports
    /// of `stages`.
    pub fn all(&self, version: &str, stages: &[&str]) -> Vec<PathBuf> {
        let mut all: Vec<PathBuf> = [
            &self.build,
            &self.checks,
            &self.probe,
            &self.measured,
            &self.decisions,
            &self.decisions_partial,
            &self.baseline,
            &self.bundle,
            &self.markdown,
            &self.html,
            &self.attestation,
        ]
        .into_iter()
        .cloned()
        .collect();
        all.extend(stages.iter().map(|s| Outputs::gate(version, s)));
        all
    }

    /// The gate report of `stage`.
    pub fn gate(version: &str, stage: &str) -> PathBuf {
        PathBuf::from("out").join(format!("gates-{stage}-{version}.json"))
    }
}

/// Checks that a release version can name files: no separators or dot-dot.
pub fn check_version(version: &str) -> Result<()> {
    let ok = !version.is_empty()
        && version != "."
        && version != ".."
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'));
    if !ok {
        bail!("--version {version:?}: use letters, digits and . - _ + only (it names files)");
    }
    Ok(())
}

/// Checks `--stages` against the configured rollout: known names, no
/// repeats, in rollout order.
pub fn parse_stages(list: &[String], config: &gates::Config) -> Result<Vec<String>> {
    let order = config.stage_names();
    let mut out: Vec<String> = Vec::new();
    let mut last = None;
    for name in list.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let Some(pos) = order.iter().position(|s| *s == name) else {
            bail!(
                "--stages: unknown stage {name:?} (stages: {})",
                order.join(", ")
            );
        };
        if last.is_some_and(|l| pos <= l) {
            bail!(
                "--stages: {name:?} is repeated or out of rollout order ({})",
                order.join(", ")
            );
        }
        last = Some(pos);
        out.push(name.to_string());
    }
    if out.is_empty() {
        bail!("--stages: name at least one stage ({})", order.join(", "));
    }
    Ok(out)
}

/// How many in-process requests the gateway load sends, and its time bound.
const LOAD_REQUESTS: u64 = 200;
const LOAD_CONCURRENCY: u64 = 4;
const LOAD_MAX: Duration = Duration::from_secs(10);

/// What the gateway step found, for the gates and the summary.
struct GatewayFound {
    row: GatewayRow,
    policy: Option<slo::Policy>,
    p95_ms: Option<f64>,
    failure: Option<String>,
    /// The in-process gateway, still running when Prometheus watches it.
    running: Option<a2a::Gateway>,
}

/// How the gateway step runs: where the in-process gateway listens, what it
/// injects, and whether it keeps running for Prometheus to watch.
struct GatewayPlan<'a> {
    addr: &'a str,
    faults: a2a::faults::Faults,
    keep_running: bool,
}

/// Step 3: the gateway, in-process or at `$A2A_URL`, probed then loaded.
/// Results go to `out/`: the probe, the measured snapshot and (in-process)
/// the decision log.
fn gateway_step(
    root: &Path,
    outs: &Outputs,
    version: &str,
    ts: u64,
    plan: &GatewayPlan<'_>,
) -> Result<GatewayFound> {
    let external = a2a::url_from_env();
    let decisions = root.join(&outs.decisions);
    let partial = root.join(&outs.decisions_partial);
    let gateway = match &external {
        Some(_) => None,
        None => {
            remove_own(&partial)?;
            Some(
                a2a::Gateway::start(a2a::GatewayOptions {
                    addr: plan.addr.to_string(),
                    faults: plan.faults,
                    decision_log: Some(partial.clone()),
                    ..a2a::GatewayOptions::default()
                })
                .context("cannot start the in-process A2A gateway")?,
            )
        }
    };
    let url = match (&external, &gateway) {
        (Some(u), _) => u.clone(),
        (None, Some(g)) => g.url(),
        (None, None) => unreachable!("a gateway was started"),
    };
    let probed = a2a::probe(&url);
    let loaded = probed
        .as_ref()
        .ok()
        .map(|_| a2a::load(&url, LOAD_REQUESTS, LOAD_CONCURRENCY, LOAD_MAX));
    let running = match gateway {
        Some(g) if plan.keep_running => Some(g),
        Some(g) => {
            close_gateway(g, root, outs)?;
            None
        }
        None => {
            remove_own(&decisions)?;
            None
        }
    };
    let mut row = GatewayRow {
        url: url.clone(),
        in_process: external.is_none(),
        probe_ok: false,
        allow: false,
        residency_pass: false,
        persisted_only: false,
        requests: 0,
        errors: 0,
        p50_ms: 0.0,
        p99_ms: 0.0,
        a2a_v1: None,
    };
    let probe = match probed {
        Ok(p) => p,
        Err(e) => {
            remove_own(&root.join(&outs.probe))?;
            remove_own(&root.join(&outs.measured))?;
            return Ok(GatewayFound {
                row,
                policy: None,
                p95_ms: None,
                failure: Some(format!("A2A probe of {url} failed: {e:#}")),
                running,
            });
        }
    };
    util::write_json(&root.join(&outs.probe), &probe.to_json())?;
    row.a2a_v1 = probe.a2a_v1.as_ref().map(|v| v.summary());
    row.probe_ok = true;
    row.allow = probe.example.allow;
    row.residency_pass = probe.policy.residency_pass;
    row.persisted_only = probe.policy.persisted_only;
    let policy = Some(probe.policy);
    let mut failure = (!probe.example.allow).then(|| {
        format!(
            "A2A gateway denied the seed's example request: {}",
            probe.example.reasons.join("; ")
        )
    });
    let mut p95_ms = None;
    match loaded.expect("loaded after a good probe") {
        Ok(load) => {
            row.requests = load.requests;
            row.errors = load.errors;
            row.p50_ms = load.p50_ms;
            row.p99_ms = load.p99_ms;
            p95_ms = Some(load.p95_ms);
            let snapshot = a2a::measured_snapshot(&probe, &load, version, ts);
            snapshot.save(&root.join(&outs.measured))?;
            // With Prometheus watching, errors are judged by the gates (availability).
            if load.errors > 0 && !plan.keep_running {
                failure.get_or_insert(format!(
                    "A2A load: {} of {} requests failed ({})",
                    load.errors,
                    load.requests,
                    load.first_error.as_deref().unwrap_or("no detail")
                ));
            }
        }
        Err(e) => {
            remove_own(&root.join(&outs.measured))?;
            failure.get_or_insert(format!("A2A load on {url} failed: {e:#}"));
        }
    }
    Ok(GatewayFound {
        row,
        policy,
        p95_ms,
        failure,
        running,
    })
}

/// Stops the in-process gateway and gives its decision log its final name.
fn close_gateway(gateway: a2a::Gateway, root: &Path, outs: &Outputs) -> Result<()> {
    let partial = root.join(&outs.decisions_partial);
    gateway
        .shutdown()
        .context("cannot stop the in-process A2A gateway")?;
    // Like `util::write_atomic`: on disk before it takes the final name.
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .and_then(|()| std::fs::rename(&partial, root.join(&outs.decisions)))
        .with_context(|| format!("cannot write {}", outs.decisions.display()))
}

/// Removes what an interrupted run for the version can leave beside its
/// outputs: the decision log the gateway was still writing (`.partial`) and
/// the temporary files of [`util::write_atomic`]. Left in `out/`, this run's
/// pack would take them for evidence.
fn remove_leftovers(root: &Path, outs: &Outputs, own: &[PathBuf]) -> Result<()> {
    remove_own(&root.join(&outs.decisions_partial))?;
    for path in own {
        util::remove_stale_tmp(&root.join(path))?;
    }
    Ok(())
}

/// A reference (path and sha256) to a file this run wrote, for a report's inputs.
fn file_ref(root: &Path, rel: &Path) -> Result<gates::FileRef> {
    gates::FileRef::read(root, rel).map(|(_, file)| file)
}

/// Removes a file this task wrote on an earlier run; a missing one is fine.
fn remove_own(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove the stale {}", path.display())),
    }
}

/// A gate report as a summary row.
fn stage_row(report: &gates::Report, path: &Path) -> StageRow {
    StageRow {
        stage: report.stage.clone(),
        result: report.result.into(),
        report: Some(path.display().to_string()),
        checks: report
            .checks
            .iter()
            .map(|c| CheckRow {
                metric: if c.kind == gates::CheckKind::Regression {
                    format!("{} vs baseline %", c.metric)
                } else {
                    c.metric.clone()
                },
                observed: c.observed.clone(),
                comparator: c.comparator,
                threshold: c.threshold.clone(),
                verdict: c.verdict,
                regression: c.kind == gates::CheckKind::Regression,
                source: serde_json::to_value(c.source)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                query: c.query.clone(),
            })
            .collect(),
        reasons: report.reasons.clone(),
    }
}

/// Runs the whole rehearsal: `Ok(exit::OK)` when every step passed, else an
/// error carrying the code of the first failure (see [`exit`]). Each step is
/// a method of `Run`, in the order of the module documentation.
pub fn run(root: &Path, args: &GoliveArgs) -> Result<u8> {
    let plan = Plan::new(root, args)?;
    let mut run = Run::start(root, plan)?;
    run.build_facts()?;
    run.pre_merge_checks()?;
    let mut gateway = run.gateway()?;
    let baseline = run.baseline(gateway.as_ref())?;
    run.gates(&baseline, gateway.as_ref())?;
    if let Some(g) = gateway.as_mut().and_then(|g| g.running.take()) {
        close_gateway(g, root, &run.outs)?;
    }
    run.evidence()?;
    run.reports()
}

/// What the user asked for, all checked before anything is written.
struct Plan {
    version: String,
    config: gates::Config,
    stages: Vec<String>,
    degrade: slo::Degrade,
    /// Faults the in-process gateway injects (`--degrade A2A.*`).
    faults: a2a::faults::Faults,
    /// The Prometheus server that judges the queried metrics, if any.
    prometheus: Option<prometheus::Client>,
    gateway_addr: String,
    seed: u64,
    checks: Vec<Check>,
    ts: u64,
    key: EvidenceKey,
    strict: bool,
}

impl Plan {
    fn new(root: &Path, args: &GoliveArgs) -> Result<Plan> {
        let usage = |e| util::fail(exit::USAGE, e);
        let version = args.release.clone().unwrap_or_else(util::version_from_env);
        check_version(&version).map_err(usage)?;
        let config = gates::Config::load(root, args.config.as_deref())?;
        let stages = parse_stages(&args.stages, &config).map_err(usage)?;
        let (faults, degrade) = a2a::faults::split_degrade(&args.degrade).map_err(usage)?;
        let degrade = slo::parse_degrade(&degrade).map_err(usage)?;
        let prometheus = prometheus_client(args, &config).map_err(usage)?;
        if !faults.is_none() && a2a::url_from_env().is_some() {
            return Err(usage(anyhow::anyhow!(
                "--degrade {} and {} inject faults into the in-process gateway; unset A2A_URL to use it",
                a2a::faults::LATENCY,
                a2a::faults::ERROR_RATE
            )));
        }
        let seed = slo::resolve_seed(args.seed)?;
        let ts = util::now_epoch()?;
        let key = attest::keys::signing_key_from_env(args.strict, "xtask")?;
        Ok(Plan {
            version,
            config,
            stages,
            degrade,
            faults,
            prometheus,
            gateway_addr: args.gateway_addr.clone(),
            seed,
            checks: unique_checks(&args.checks),
            ts,
            key,
            strict: args.strict,
        })
    }
}

/// A run in progress: the plan, and what the steps found so far.
struct Run<'a> {
    root: &'a Path,
    plan: Plan,
    outs: Outputs,
    sh: Shell,
    progress: Progress,
    summary: Summary,
    /// Notes for the reports, in the order they arose.
    notes: Vec<String>,
    /// The exit code of the first failure, and why (the line on stderr).
    code: u8,
    failure: Option<String>,
}

/// The baseline every stage is compared with, and the probe's policy results.
struct Baseline {
    snapshot: slo::Snapshot,
    file: gates::FileRef,
    probe: Option<slo::Policy>,
    probe_file: Option<gates::FileRef>,
}

impl<'a> Run<'a> {
    /// Removes what an interrupted run left, and starts the progress display.
    fn start(root: &'a Path, plan: Plan) -> Result<Run<'a>> {
        let outs = Outputs::new(&plan.version);
        remove_leftovers(
            root,
            &outs,
            &outs.all(&plan.version, &plan.config.stage_names()),
        )?;
        let sh = Shell::new().context("cannot start a shell")?;
        sh.change_dir(root);
        let total = 5 + usize::from(!plan.checks.is_empty()) + plan.stages.len();
        let summary = Summary {
            version: plan.version.clone(),
            generated_at: util::rfc3339(plan.ts),
            seed: plan.seed,
            strict: plan.strict,
            result: gates::Verdict::Pass,
            exit_code: exit::OK,
            facts: Facts::default(),
            checks: Vec::new(),
            gateway: None,
            stages: Vec::new(),
            evidence: None,
            notes: Vec::new(),
        };
        Ok(Run {
            root,
            plan,
            outs,
            sh,
            progress: Progress::new(total),
            summary,
            notes: Vec::new(),
            code: exit::OK,
            failure: None,
        })
    }

    /// Records a failure that stops the rollout: the first one sets the exit code.
    fn stop(&mut self, code: u8, why: String) {
        if self.code == exit::OK {
            self.code = code;
            self.failure = Some(why.clone());
        }
        self.notes.push(why);
    }

    /// `root/rel`.
    fn path(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    /// Step 1: build facts → `out/build-<version>.json`.
    fn build_facts(&mut self) -> Result<()> {
        self.progress.step("build facts");
        let facts = build_facts(&self.sh, self.root);
        if facts.commit.is_none() {
            self.notes
                .push("not a git repository (or git is missing): no commit recorded".to_string());
        }
        util::write_json(
            &self.path(&self.outs.build),
            &json!({
                "version": self.plan.version,
                "generatedAt": util::rfc3339(self.plan.ts),
                "facts": facts,
            }),
        )?;
        self.summary.facts = facts;
        Ok(())
    }

    /// Step 2 (with `--checks`): the pre-merge checks → `out/checks-<version>.json`.
    fn pre_merge_checks(&mut self) -> Result<()> {
        if self.plan.checks.is_empty() {
            return remove_own(&self.path(&self.outs.checks));
        }
        let names: Vec<&str> = self.plan.checks.iter().map(|c| c.name()).collect();
        self.progress
            .step(&format!("pre-merge checks: {}", names.join(", ")));
        for check in self.plan.checks.clone() {
            let run = self.progress.suspend(|| run_check(&self.sh, check));
            self.progress.println(&format!(
                "check {}: {} in {:.1} s",
                check.name(),
                if run.ok { "ok" } else { "FAILED" },
                run.seconds
            ));
            self.summary.checks.push(run);
        }
        util::write_json(
            &self.path(&self.outs.checks),
            &json!({ "version": self.plan.version, "checks": self.summary.checks }),
        )?;
        if self.summary.checks.iter().any(|c| !c.ok) {
            self.stop(
                exit::CHECK_FAILED,
                "a pre-merge check failed: the rollout was not rehearsed".to_string(),
            );
        }
        Ok(())
    }

    /// Step 3: the gateway, probed and loaded (see [`gateway_step`]); not
    /// after a failed check.
    fn gateway(&mut self) -> Result<Option<GatewayFound>> {
        if self.code != exit::OK {
            // Not probed this time: an earlier run's gateway records would be stale evidence.
            for own in [&self.outs.probe, &self.outs.measured, &self.outs.decisions] {
                remove_own(&self.path(own))?;
            }
            return Ok(None);
        }
        self.progress.step("A2A gateway: probe and load");
        let plan = GatewayPlan {
            addr: &self.plan.gateway_addr,
            faults: self.plan.faults,
            keep_running: self.plan.prometheus.is_some(),
        };
        let found = gateway_step(
            self.root,
            &self.outs,
            &self.plan.version,
            self.plan.ts,
            &plan,
        )?;
        if let Some(why) = &found.failure {
            self.stop(
                exit::GATE_FAILED,
                format!("{why}: the rollout stops before the first stage"),
            );
        }
        self.summary.gateway = Some(found.row.clone());
        Ok(Some(found))
    }

    /// Step 4: the SLO baseline → `out/slo-<version>-baseline.json`.
    fn baseline(&mut self, gateway: Option<&GatewayFound>) -> Result<Baseline> {
        self.progress.step("SLO baseline");
        let p = &self.plan;
        let snapshot = slo::simulate(&p.version, p.ts, p.seed, &slo::Degrade::new());
        snapshot.save(&self.path(&self.outs.baseline))?;
        // The probe feeds every stage's policy checks; its reference is taken once.
        let probe = gateway.and_then(|g| g.policy);
        let probe_file = match probe {
            Some(_) => Some(file_ref(self.root, &self.outs.probe)?),
            None => None,
        };
        Ok(Baseline {
            snapshot,
            file: file_ref(self.root, &self.outs.baseline)?,
            probe,
            probe_file,
        })
    }

    /// Step 5: the gate of every stage in rollout order → `out/gates-<stage>-<version>.json`.
    /// A failed stage stops the rollout: later stages are `NOT RUN`. Reports
    /// of stages not asked for this time are removed.
    fn gates(&mut self, baseline: &Baseline, gateway: Option<&GatewayFound>) -> Result<()> {
        let mut stopped = self.code != exit::OK;
        let client = self.plan.prometheus.clone();
        let window = self.plan.config.prometheus.clone();
        let url = gateway.map(|g| g.row.url.clone());
        let mut observer = match (&client, &url) {
            (Some(client), Some(url)) if !stopped => {
                self.progress.println(&format!(
                    "waiting for Prometheus at {} to scrape {url}/metrics",
                    client.url()
                ));
                Some(prometheus::observe::Observer::start(client, &window, url)?)
            }
            _ => None,
        };
        let names: Vec<String> = self
            .plan
            .config
            .stage_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        for stage in names {
            let path = Outputs::gate(&self.plan.version, &stage);
            if !self.plan.stages.contains(&stage) {
                remove_own(&self.path(&path))?;
                continue;
            }
            self.progress.step(&format!("gate {stage}"));
            if stopped {
                remove_own(&self.path(&path))?;
                self.summary.stages.push(StageRow {
                    stage,
                    result: gates::StageResult::NotRun,
                    report: None,
                    checks: Vec::new(),
                    reasons: Vec::new(),
                });
                continue;
            }
            let seen = match observer.as_mut() {
                Some(observer) => {
                    let window = prometheus::show_duration(window.window);
                    self.progress
                        .println(&format!("gate {stage}: {window} of load, then Prometheus"));
                    let seen = observer.stage(&self.plan.version)?;
                    self.notes.push(format!(
                        "{stage}: {} requests in the observation window ({} failed), judged by Prometheus at {}",
                        seen.requests,
                        seen.errors,
                        seen.snapshot.prometheus.as_ref().map_or("", |r| r.eval_time.as_str())
                    ));
                    Some(seen.snapshot)
                }
                None => None,
            };
            let p95 = gateway.and_then(|g| g.p95_ms);
            let report = self.gate(&stage, baseline, p95, seen.as_ref())?;
            util::write_json(
                &self.path(&path),
                &serde_json::to_value(&report).context("cannot serialise a gate report")?,
            )?;
            self.progress
                .println(&format!("gate {stage}: {}", report.result));
            if report.result == gates::Verdict::Warn && self.summary.result == gates::Verdict::Pass
            {
                self.summary.result = gates::Verdict::Warn;
            }
            if !report.passed() {
                stopped = true;
                self.stop(
                    exit::GATE_FAILED,
                    format!("gate {stage} failed: the rollout stops there"),
                );
            }
            self.summary.stages.push(stage_row(&report, &path));
        }
        Ok(())
    }

    /// Judges one stage on its simulated observations, the gateway's measured
    /// p95, and what Prometheus says (`seen`) about the queried metrics.
    fn gate(
        &self,
        stage: &str,
        baseline: &Baseline,
        p95_ms: Option<f64>,
        seen: Option<&slo::Snapshot>,
    ) -> Result<gates::Report> {
        let p = &self.plan;
        let mut observed = gates::simulate_stage(stage, &p.version, p.ts, p.seed, &p.degrade);
        let mut probe_metrics = Vec::new();
        if let Some(p95) = p95_ms {
            observed.set_metric(gates::A2A_P95, p95);
            probe_metrics.push(gates::A2A_P95.to_string());
        }
        if let Some(seen) = seen {
            prometheus::observe::overlay(&mut observed, seen);
        }
        let inputs = gates::Inputs {
            observed: &observed,
            observed_file: None,
            baseline: Some(&baseline.snapshot),
            baseline_file: Some(baseline.file.clone()),
            probe: baseline.probe,
            probe_file: baseline.probe_file.clone(),
            probe_metrics,
        };
        gates::judge(&p.config, stage, &inputs, p.strict, p.ts)
    }

    /// Step 6: `out/` packed into `dist/evidence-<version>.json`, signed, then verified.
    fn evidence(&mut self) -> Result<()> {
        self.progress.step("evidence: pack and verify");
        let opts = evidence::PackOptions {
            root: self.root.to_path_buf(),
            dir: PathBuf::from("out"),
            out: self.outs.bundle.clone(),
            version: self.plan.version.clone(),
            ts: self.plan.ts,
        };
        // An Ed25519 key signs the evidence as an in-toto envelope, and the
        // run's verification summary too (see `attest`).
        let (files, verdict, attested) = match &self.plan.key {
            EvidenceKey::Hmac(key) => {
                let bundle = evidence::pack(&opts, key)?;
                let verdict =
                    evidence::verify(self.root, &bundle, &self.outs.bundle, key, self.plan.strict);
                (bundle.manifest.artifacts.len(), verdict, None)
            }
            EvidenceKey::Ed25519(key) => {
                let (packed, verdict) =
                    attest::pack_and_verify(&opts, key, self.summary.facts.clone())?;
                (packed.subjects.len(), verdict, Some((key, packed.subjects)))
            }
        };
        if !verdict.ok && self.code == exit::OK {
            self.code = exit::NOT_VERIFIED;
            self.failure = Some(format!(
                "the evidence {} does not verify: {}",
                self.outs.bundle.display(),
                verdict.reasons.join("; ")
            ));
        }
        let attestation = &self.outs.attestation;
        match attested {
            Some((key, subjects)) => {
                let run = attest::vsa::Run {
                    project: &project_name(self.root),
                    version: &self.plan.version,
                    time: util::rfc3339(self.plan.ts),
                    passed: self.code == exit::OK,
                    stages: self
                        .summary
                        .stages
                        .iter()
                        .map(|s| attest::vsa::StageOutcome {
                            stage: s.stage.clone(),
                            result: s.result,
                        })
                        .collect(),
                    policy_file: self
                        .plan
                        .config
                        .file
                        .as_ref()
                        .map(|f| (f.path.clone(), f.sha256.clone())),
                    evidence: (
                        self.outs.bundle.display().to_string(),
                        file_ref(self.root, &self.outs.bundle)?.sha256,
                    ),
                    subjects,
                };
                attest::write_summary(self.root, attestation, key, run)?;
                self.notes.push(format!(
                    "signed verification summary: {}",
                    attestation.display()
                ));
            }
            // A summary left by an earlier run with an Ed25519 key is not this run's.
            None => remove_own(&self.path(attestation))?,
        }
        self.summary.evidence = Some(EvidenceRow {
            bundle: self.outs.bundle.display().to_string(),
            files,
            signature_ok: verdict.signature_ok,
            ok: verdict.ok,
            reasons: verdict.reasons,
        });
        Ok(())
    }

    /// Step 7: the reports (terminal, Markdown, HTML, the step summary); ends
    /// the run with its exit code.
    fn reports(mut self) -> Result<u8> {
        self.progress.step("reports");
        if self.code != exit::OK {
            self.summary.result = gates::Verdict::Fail;
        }
        self.summary.exit_code = self.code;
        self.summary.notes = std::mem::take(&mut self.notes);
        let md = report::markdown(&self.summary);
        util::write_atomic(&self.path(&self.outs.markdown), md.as_bytes())?;
        util::write_atomic(
            &self.path(&self.outs.html),
            report::html(&self.summary).as_bytes(),
        )?;
        if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
            append(Path::new(&path), &md)?;
        }
        self.progress.finish();
        util::print_stdout(&report::terminal(&self.summary))?;
        util::println_stdout(&format!(
            "reports: {} and {}",
            self.outs.markdown.display(),
            self.outs.html.display()
        ))?;
        match self.failure {
            None => Ok(exit::OK),
            Some(why) => Err(util::fail(self.code, anyhow::anyhow!(why))),
        }
    }
}

/// The project's directory name, for the verification summary's resource URI.
fn project_name(root: &Path) -> String {
    std::fs::canonicalize(root)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "project".to_string())
}

/// Appends `text` to the file at `path` (GitHub's step summary).
fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| {
            format!(
                "cannot append to GITHUB_STEP_SUMMARY file {}",
                path.display()
            )
        })
}

/// The Prometheus server golive judges with (`--prometheus`, else
/// `$PROMETHEUS_URL`, else `[prometheus] url`), if any.
fn prometheus_client(
    args: &GoliveArgs,
    config: &gates::Config,
) -> Result<Option<prometheus::Client>> {
    let Some(url) = prometheus::resolve_url(args.prometheus.as_deref(), &config.prometheus) else {
        return Ok(None);
    };
    let random_port = args.gateway_addr.ends_with(":0");
    match a2a::url_from_env() {
        Some(gw) if !random_port => bail!(
            "--gateway-addr places the in-process gateway; with A2A_URL set, the gateway is {gw}"
        ),
        None if random_port => bail!(
            "Prometheus at {url} cannot scrape a gateway on a random port: give --gateway-addr HOST:PORT, the address its scrape config names (e.g. --gateway-addr 127.0.0.1:18080)"
        ),
        _ => {}
    }
    prometheus::Client::new(&url, config.prometheus.timeout).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_run_once_each_in_the_order_named() {
        let named = [Check::Test, Check::Fmt, Check::Test];
        assert_eq!(unique_checks(&named), [Check::Test, Check::Fmt]);
        assert_eq!(Check::Fmt.argv().join(" "), "cargo fmt --all -- --check");
    }

    #[test]
    fn versions_that_would_escape_are_refused() {
        for bad in ["", "..", "a/b", "v1 2", "../x"] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
        check_version("v0.3.2-mc").unwrap();
    }
}
