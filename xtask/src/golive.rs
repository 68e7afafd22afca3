//! `cargo xtask golive`: the seed Quickstart's seven manual steps in one
//! process. In order: build facts, optional pre-merge checks, the A2A gateway
//! (in-process, or `$A2A_URL`) probed and loaded, the SLO baseline, the gate of
//! every stage in rollout order (a failed stage stops the rollout there), the
//! signed evidence bundle (packed, then verified), and the reports.
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

use crate::flags::{Check, GoliveArgs};
use crate::report::{self, CheckRow, CheckRun, EvidenceRow, Facts, GatewayRow, StageRow, Summary};
use crate::util::{self, exit};
use crate::{a2a, evidence, gates, slo};

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
}

/// Step 3: the gateway, in-process or at `$A2A_URL`, probed then loaded.
/// Results go to `out/`: the probe, the measured snapshot and (in-process)
/// the decision log.
fn gateway_step(root: &Path, outs: &Outputs, version: &str, ts: u64) -> Result<GatewayFound> {
    let external = std::env::var("A2A_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    let decisions = root.join(&outs.decisions);
    let partial = root.join(&outs.decisions_partial);
    let gateway = match &external {
        Some(_) => None,
        None => {
            remove_own(&partial)?;
            Some(
                a2a::Gateway::start(a2a::GatewayOptions {
                    decision_log: Some(partial.clone()),
                    ..a2a::GatewayOptions::default()
                })
                .context("cannot start the in-process A2A gateway")?,
            )
        }
    };
    let url = match (&external, &gateway) {
        (Some(u), _) => u.trim().to_string(),
        (None, Some(g)) => g.url(),
        (None, None) => unreachable!("a gateway was started"),
    };
    let probed = a2a::probe(&url);
    let loaded = probed
        .as_ref()
        .ok()
        .map(|_| a2a::load(&url, LOAD_REQUESTS, LOAD_CONCURRENCY, LOAD_MAX));
    if let Some(g) = gateway {
        g.shutdown()
            .context("cannot stop the in-process A2A gateway")?;
        // Like `util::write_atomic`: on disk before it takes the final name.
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .and_then(|()| std::fs::rename(&partial, &decisions))
            .with_context(|| format!("cannot write {}", outs.decisions.display()))?;
    } else {
        remove_own(&decisions)?;
    }
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
            });
        }
    };
    util::write_json(&root.join(&outs.probe), &probe.to_json())?;
    row.probe_ok = true;
    row.allow = probe.example.allow;
    row.residency_pass = probe.policy.residency_pass;
    row.persisted_only = probe.policy.persisted_only;
    let policy = Some(slo::Policy {
        residency_pass: probe.policy.residency_pass,
        persisted_only: probe.policy.persisted_only,
    });
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
            util::write_json(&root.join(&outs.measured), &snapshot)?;
            if load.errors > 0 {
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
    })
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
    let bytes =
        std::fs::read(root.join(rel)).with_context(|| format!("cannot read {}", rel.display()))?;
    Ok(gates::FileRef::of(rel, &bytes))
}

/// Removes a file this task wrote on an earlier run; a missing one is fine.
fn remove_own(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove the stale {}", path.display())),
    }
}

fn verdict_str(v: gates::Verdict) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A gate report as a summary row.
fn stage_row(report: &gates::Report, path: &Path) -> StageRow {
    StageRow {
        stage: report.stage.clone(),
        result: verdict_str(report.result),
        report: Some(path.display().to_string()),
        checks: report
            .checks
            .iter()
            .map(|c| CheckRow {
                metric: if c.kind == "regression" {
                    format!("{} vs baseline %", c.metric)
                } else {
                    c.metric.clone()
                },
                observed: c.observed.clone(),
                comparator: c.comparator.clone(),
                threshold: c.threshold.clone(),
                verdict: verdict_str(c.verdict),
                regression: c.kind == "regression",
            })
            .collect(),
        reasons: report.reasons.clone(),
    }
}

/// Runs the whole rehearsal; returns the exit code (see [`exit`]).
pub fn run(root: &Path, args: &GoliveArgs) -> Result<u8> {
    // Everything the user gave is checked before anything is written.
    let usage = |e| util::fail(exit::USAGE, e);
    let version = args.release.clone().unwrap_or_else(util::version_from_env);
    check_version(&version).map_err(usage)?;
    let config = gates::Config::load(root, args.config.as_deref())?;
    let stages = parse_stages(&args.stages, &config).map_err(usage)?;
    let degrade = slo::parse_degrade(&args.degrade).map_err(usage)?;
    let seed = slo::resolve_seed(args.seed)?;
    let checks = unique_checks(&args.checks);
    let ts = util::now_epoch()?;
    let key = evidence::Key::from_env()?;
    key.check_dev(args.strict, "xtask")?;
    let outs = Outputs::new(&version);
    remove_leftovers(root, &outs, &outs.all(&version, &config.stage_names()))?;
    let sh = Shell::new().context("cannot start a shell")?;
    sh.change_dir(root);

    let total = 5 + usize::from(!checks.is_empty()) + stages.len();
    let mut progress = Progress::new(total);
    let mut notes = Vec::new();

    progress.step("build facts");
    let facts = build_facts(&sh, root);
    if facts.commit.is_none() {
        notes.push("not a git repository (or git is missing): no commit recorded".to_string());
    }
    util::write_json(
        &root.join(&outs.build),
        &json!({ "version": version, "generatedAt": util::rfc3339(ts), "facts": facts }),
    )?;

    let mut summary = Summary {
        version: version.clone(),
        generated_at: util::rfc3339(ts),
        seed,
        strict: args.strict,
        result: "PASS".to_string(),
        exit_code: exit::OK,
        facts,
        checks: Vec::new(),
        gateway: None,
        stages: Vec::new(),
        evidence: None,
        notes: Vec::new(),
    };
    let mut code = exit::OK;
    // Why the run does not pass: the one line on stderr at the end.
    let mut failure = None;

    if checks.is_empty() {
        remove_own(&root.join(&outs.checks))?;
    } else {
        let names: Vec<&str> = checks.iter().map(|c| c.name()).collect();
        progress.step(&format!("pre-merge checks: {}", names.join(", ")));
        for &check in &checks {
            let name = check.name();
            let run = progress.suspend(|| run_check(&sh, check));
            progress.println(&format!(
                "check {name}: {} in {:.1} s",
                if run.ok { "ok" } else { "FAILED" },
                run.seconds
            ));
            summary.checks.push(run);
        }
        util::write_json(
            &root.join(&outs.checks),
            &json!({ "version": version, "checks": summary.checks }),
        )?;
        if summary.checks.iter().any(|c| !c.ok) {
            code = exit::CHECK_FAILED;
            let why = "a pre-merge check failed: the rollout was not rehearsed".to_string();
            failure = Some(why.clone());
            notes.push(why);
        }
    }

    let mut gateway = None;
    if code == exit::OK {
        progress.step("A2A gateway: probe and load");
        let found = gateway_step(root, &outs, &version, ts)?;
        if let Some(why) = &found.failure {
            code = exit::GATE_FAILED;
            let why = format!("{why}: the rollout stops before the first stage");
            failure = Some(why.clone());
            notes.push(why);
        }
        summary.gateway = Some(found.row.clone());
        gateway = Some(found);
    } else {
        // Not probed this time: an earlier run's gateway records would be stale evidence.
        for own in [&outs.probe, &outs.measured, &outs.decisions] {
            remove_own(&root.join(own))?;
        }
    }

    progress.step("SLO baseline");
    let baseline = slo::simulate(&version, ts, seed, &slo::Degrade::new());
    baseline.save(&root.join(&outs.baseline))?;
    let baseline_file = file_ref(root, &outs.baseline)?;
    // The probe feeds every stage's policy checks; its reference is taken once.
    let probe_policy = gateway.as_ref().and_then(|g| g.policy);
    let probe_file = match probe_policy {
        Some(_) => Some(file_ref(root, &outs.probe)?),
        None => None,
    };

    let mut stopped = code != exit::OK;
    for stage in config.stage_names() {
        let path = Outputs::gate(&version, stage);
        let wanted = stages.iter().any(|s| s == stage);
        if !wanted {
            remove_own(&root.join(&path))?;
            continue;
        }
        progress.step(&format!("gate {stage}"));
        if stopped {
            remove_own(&root.join(&path))?;
            summary.stages.push(StageRow {
                stage: stage.to_string(),
                result: "NOT RUN".to_string(),
                report: None,
                checks: Vec::new(),
                reasons: Vec::new(),
            });
            continue;
        }
        let mut observed = gates::simulate_stage(stage, &version, ts, seed, &degrade);
        if let Some(p95) = gateway.as_ref().and_then(|g| g.p95_ms) {
            observed.set_metric(gates::A2A_P95, p95);
        }
        let inputs = gates::Inputs {
            observed: &observed,
            observed_file: None,
            baseline: Some(&baseline),
            baseline_file: Some(baseline_file.clone()),
            probe: probe_policy,
            probe_file: probe_file.clone(),
        };
        let report = gates::judge(&config, stage, &inputs, args.strict, ts)?;
        util::write_json(
            &root.join(&path),
            &serde_json::to_value(&report).context("cannot serialise a gate report")?,
        )?;
        progress.println(&format!("gate {stage}: {}", verdict_str(report.result)));
        if report.result == gates::Verdict::Warn && summary.result == "PASS" {
            summary.result = "WARN".to_string();
        }
        if !report.passed() {
            stopped = true;
            code = exit::GATE_FAILED;
            let why = format!("gate {stage} failed: the rollout stops there");
            failure = Some(why.clone());
            notes.push(why);
        }
        summary.stages.push(stage_row(&report, &path));
    }

    progress.step("evidence: pack and verify");
    let opts = evidence::PackOptions {
        root: root.to_path_buf(),
        dir: PathBuf::from("out"),
        out: outs.bundle.clone(),
        version: version.clone(),
        ts,
    };
    let bundle = evidence::pack(&opts, &key)?;
    let verdict = evidence::verify(root, &bundle, &outs.bundle, &key, args.strict);
    if !verdict.ok && code == exit::OK {
        code = exit::NOT_VERIFIED;
        failure = Some(format!(
            "the evidence bundle {} does not verify: {}",
            outs.bundle.display(),
            verdict.reasons.join("; ")
        ));
    }
    summary.evidence = Some(EvidenceRow {
        bundle: outs.bundle.display().to_string(),
        files: bundle.manifest.artifacts.len(),
        signature_ok: verdict.signature_ok,
        ok: verdict.ok,
        reasons: verdict.reasons.clone(),
    });

    progress.step("reports");
    if code != exit::OK {
        summary.result = "FAIL".to_string();
    }
    summary.exit_code = code;
    summary.notes = notes;
    let md = report::markdown(&summary);
    util::write_atomic(&root.join(&outs.markdown), md.as_bytes())?;
    util::write_atomic(&root.join(&outs.html), report::html(&summary).as_bytes())?;
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        append(Path::new(&path), &md)?;
    }
    progress.finish();
    util::print_stdout(&report::terminal(&summary))?;
    util::println_stdout(&format!(
        "reports: {} and {}",
        outs.markdown.display(),
        outs.html.display()
    ))?;
    match failure {
        None => Ok(exit::OK),
        Some(why) => Err(util::fail(code, anyhow::anyhow!(why))),
    }
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
