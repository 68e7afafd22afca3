//! `gates export`: the gates' objectives as the manifests of the engine that
//! runs the real rollout, Argo Rollouts ([`argo`]) or Flagger ([`flagger`]),
//! so that what was rehearsed here is what gates production.
//!
//! Both engines judge a canary by running one Prometheus query per metric and
//! comparing its result with bounds. An objective travels when its metric has a
//! query in `[prometheus.queries]` and a numeric bound: its pass bound, warning
//! bound and `required` flag map onto the engine's fields (see each module).
//! What the engines cannot express is left out and listed, on stderr and in a
//! comment at the top of the output, never dropped in silence: a metric without
//! a query (the export never invents one), a policy check (`equals`, a boolean
//! fed by the probe or the snapshot, not a Prometheus number) and the regression
//! check against a `--baseline` file (the engines judge the canary alone).
//!
//! Thresholds are copied exactly, in the units of the metric's query: a query
//! that returns seconds for an objective in milliseconds must say `* 1000`
//! itself; the export shows each metric's unit beside its bounds and never
//! rescales. A query's `$window` becomes the analysis interval.
//!
//! The output is YAML, not JSON, although both engines accept JSON: the issue
//! asks for the left-out objectives in a comment, which only YAML has, and a
//! multi-document YAML file is what `kubectl apply -f` and GitOps repositories
//! take. It is deterministic: the same configuration gives the same bytes.
//! Everything here is pure except [`run`].

pub mod argo;
pub mod flagger;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::gates::{self, Bound, Objective, Stage};
use crate::util::{self, exit};

/// The `[export]` section of `golive.toml`: what the manifests need beyond the
/// objectives and the queries. Every key is optional.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The prefix of every resource name (`mc-canary-20`), and the name of
    /// Flagger's Canary and its target.
    pub name: String,
    /// `metadata.namespace` of every resource; omitted when unset.
    pub namespace: Option<String>,
    /// The Prometheus address the engine queries, when it differs from the
    /// rehearsal's `[prometheus] url` (an in-cluster service, say).
    pub prometheus_url: Option<String>,
    /// Seconds or minutes between measurements (`30s`, `1m`); also what a
    /// query's `$window` becomes.
    pub interval: String,
    /// Argo: measurements per metric.
    pub count: u32,
    /// Argo: failed measurements tolerated before the analysis fails.
    pub failure_limit: u32,
    /// Argo: inconclusive measurements (in the warning band, or without data
    /// for an optional objective) tolerated before the analysis is inconclusive.
    pub inconclusive_limit: u32,
    /// Flagger: failed checks before the rollback.
    pub threshold: u32,
    /// Flagger: the kind of the Canary's target.
    pub target_kind: TargetKind,
    /// Flagger: the port of the Canary's service.
    pub port: u16,
}

/// The kinds of workload a Flagger Canary can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum TargetKind {
    Deployment,
    DaemonSet,
    Service,
}

impl TargetKind {
    fn api_version(self) -> &'static str {
        match self {
            TargetKind::Deployment | TargetKind::DaemonSet => "apps/v1",
            TargetKind::Service => "v1",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            TargetKind::Deployment => "Deployment",
            TargetKind::DaemonSet => "DaemonSet",
            TargetKind::Service => "Service",
        }
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            name: "mc".to_string(),
            namespace: None,
            prometheus_url: None,
            interval: "1m".to_string(),
            count: 5,
            failure_limit: 0,
            inconclusive_limit: 1,
            threshold: 1,
            target_kind: TargetKind::Deployment,
            port: 8080,
        }
    }
}

/// The `[export]` table as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSettings {
    name: Option<String>,
    namespace: Option<String>,
    prometheus_url: Option<String>,
    interval: Option<String>,
    count: Option<u32>,
    failure_limit: Option<u32>,
    inconclusive_limit: Option<u32>,
    threshold: Option<u32>,
    target_kind: Option<TargetKind>,
    port: Option<u16>,
}

impl Settings {
    /// The section from its parsed table; errors name `export.<key>`.
    pub(crate) fn from_raw(raw: RawSettings) -> Result<Settings, String> {
        let mut s = Settings::default();
        if let Some(name) = raw.name {
            check_name(&name, 40).map_err(|e| format!("export.name: {e}"))?;
            s.name = name;
        }
        if let Some(ns) = raw.namespace {
            check_name(&ns, 63).map_err(|e| format!("export.namespace: {e}"))?;
            s.namespace = Some(ns);
        }
        if let Some(url) = raw.prometheus_url {
            crate::prometheus::check_url(&url)
                .map_err(|e| format!("export.prometheus_url: {e}"))?;
            s.prometheus_url = Some(url);
        }
        if let Some(interval) = raw.interval {
            check_interval(&interval).map_err(|e| format!("export.interval: {e}"))?;
            s.interval = interval;
        }
        let positive = |key: &str, n: u32| {
            (1..=10_000)
                .contains(&n)
                .then_some(n)
                .ok_or_else(|| format!("export.{key}: {n} is out of range (1 to 10000)"))
        };
        if let Some(n) = raw.count {
            s.count = positive("count", n)?;
        }
        if let Some(n) = raw.threshold {
            s.threshold = positive("threshold", n)?;
        }
        s.failure_limit = raw.failure_limit.unwrap_or(s.failure_limit);
        s.inconclusive_limit = raw.inconclusive_limit.unwrap_or(s.inconclusive_limit);
        s.target_kind = raw.target_kind.unwrap_or(s.target_kind);
        if let Some(port) = raw.port {
            s.port = (port > 0)
                .then_some(port)
                .ok_or("export.port: 0 is not a port")?;
        }
        Ok(s)
    }
}

/// Checks a Kubernetes name (an RFC 1123 label): lowercase letters, digits
/// and `-`, starting and ending with a letter or digit, at most `max` long.
pub fn check_name(name: &str, max: usize) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    ok.then_some(()).ok_or_else(|| {
        format!(
            "{name:?} is not a Kubernetes name (lowercase letters, digits and '-', at most {max} long)"
        )
    })
}

/// Checks an analysis interval: a whole number of seconds or minutes (`30s`,
/// `1m`), the form both engines accept (Flagger's schema: `^[0-9]+(m|s)`).
pub fn check_interval(text: &str) -> Result<(), String> {
    let digits = text.strip_suffix(['s', 'm']).unwrap_or("");
    let ok = !digits.is_empty()
        && digits.len() <= 6
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.bytes().any(|b| b != b'0');
    ok.then_some(())
        .ok_or_else(|| format!("{text:?} is not a number of seconds or minutes (e.g. 30s, 1m)"))
}

/// The Kubernetes form of a metric or stage name: lowercase, every run of
/// other characters one `-` (`GraphQL.reads.p95_ms` → `graphql-reads-p95-ms`).
pub fn k8s_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Everything an export reads: the objectives, where the engine finds
/// Prometheus, each metric's query, and the `[export]` settings.
#[derive(Clone, Debug)]
pub struct Source<'a> {
    pub config: &'a gates::Config,
    /// The Prometheus address the engine queries.
    pub address: &'a str,
    /// PromQL by metric name, `$window` not yet replaced.
    pub queries: BTreeMap<&'a str, &'a str>,
    pub settings: &'a Settings,
}

/// One objective that travels: its metric, its Kubernetes name, its query and
/// its bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned<'a> {
    pub metric: &'a str,
    pub name: String,
    pub query: &'a str,
    pub objective: Objective,
}

/// An objective left out of the export (no query, or one the engines cannot
/// express), why, and at which stages.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LeftOut {
    pub metric: String,
    pub why: String,
    pub stages: Vec<String>,
}

/// `promql` with its `$window` placeholder (see [`crate::prometheus`])
/// replaced by `window`.
pub fn with_window(promql: &str, window: &str) -> String {
    promql.replace(crate::prometheus::WINDOW, window)
}

/// What of `stage` travels, and what is left out (one entry per metric).
pub fn plan<'a>(src: &Source<'a>, stage: &'a Stage) -> Result<(Vec<Planned<'a>>, Vec<LeftOut>)> {
    let mut planned: Vec<Planned<'a>> = Vec::new();
    let mut left = Vec::new();
    for (metric, objective) in &stage.objectives {
        let why = match (objective.bound, src.queries.get(metric.as_str())) {
            (Bound::Equals(_), _) => Some(
                "a policy check (equals true/false) fed by the probe or the snapshot, \
                 not a Prometheus number",
            ),
            (_, None) => Some("no query for it in [prometheus.queries]"),
            _ => None,
        };
        if let Some(why) = why {
            left.push(LeftOut {
                metric: metric.clone(),
                why: why.to_string(),
                stages: vec![stage.name.clone()],
            });
            continue;
        }
        let name = k8s_name(metric);
        if let Some(other) = planned.iter().find(|p| p.name == name) {
            bail!(
                "metrics {:?} and {metric:?} both become {name:?} in Kubernetes: rename one in golive.toml",
                other.metric
            );
        }
        check_name(&name, 63).map_err(|e| anyhow!("metric {metric:?}: {e}"))?;
        planned.push(Planned {
            metric,
            name,
            query: src.queries[metric.as_str()],
            objective: *objective,
        });
    }
    if planned.is_empty() {
        bail!(
            "stage {:?} has no objective with a Prometheus query: nothing to export \
             (add queries under [prometheus.queries], or choose another --stage)",
            stage.name
        );
    }
    Ok((planned, left))
}

/// Merges left-out entries of several stages: one entry per metric and reason.
pub fn merge_left_out(entries: impl IntoIterator<Item = LeftOut>) -> Vec<LeftOut> {
    let mut merged: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for e in entries {
        merged
            .entry((e.metric, e.why))
            .or_default()
            .extend(e.stages);
    }
    merged
        .into_iter()
        .map(|((metric, why), stages)| LeftOut {
            metric,
            why,
            stages,
        })
        .collect()
}

/// The regression check, which neither engine can express.
pub fn regression_left_out(src: &Source<'_>, stages: &[&Stage]) -> LeftOut {
    let r = src.config.regression;
    let warn = r
        .warn_pct
        .map_or(String::new(), |w| format!(", warn up to {w}%"));
    LeftOut {
        metric: "regression".to_string(),
        why: format!(
            "the check against a --baseline snapshot (pass up to {}% worse{warn}): \
             the engines judge the canary alone",
            r.max_pct
        ),
        stages: stages.iter().map(|s| s.name.clone()).collect(),
    }
}

/// The unit of a metric, as its name says (`_ms`), for the comments.
pub fn unit(metric: &str) -> &'static str {
    if metric.ends_with("_ms") {
        "ms"
    } else if metric.ends_with("_seconds") || metric.ends_with("_s") {
        "s"
    } else if metric.ends_with("_pct")
        || metric == crate::slo::AVAILABILITY
        || metric == crate::slo::UTILIZATION
    {
        "%"
    } else {
        "the query's unit"
    }
}

/// One line describing how a planned metric's bounds read.
pub fn describe(p: &Planned<'_>) -> String {
    let (op, pass) = match p.objective.bound {
        Bound::Max(x) => ("<=", x),
        Bound::Min(x) => (">=", x),
        Bound::Equals(_) => unreachable!("policy checks are left out"),
    };
    let warn = p
        .objective
        .warn
        .map_or(String::new(), |w| format!(", warn {op} {w}"));
    let required = if p.objective.required {
        ", required"
    } else {
        ""
    };
    format!(
        "{} = {} in {}: pass {op} {pass}{warn}{required}",
        p.name,
        p.metric,
        unit(p.metric)
    )
}

/// A warning when a metric's unit and its query's disagree on the face of
/// it: a metric in milliseconds whose query reads a `_seconds` series and
/// never multiplies by 1000. The export still copies the threshold as it is.
pub fn unit_warning(p: &Planned<'_>) -> Option<String> {
    let scaled = ["1000", "1e3", "1e+3"].iter().any(|k| p.query.contains(k));
    (unit(p.metric) == "ms" && p.query.contains("_seconds") && !scaled).then(|| {
        format!(
            "warning: {} is in ms but its query reads a _seconds series without `* 1000`; \
             the threshold is compared with the query's result as it is",
            p.metric
        )
    })
}

/// The unit warnings of `planned`, once per metric.
pub fn unit_warnings<'a>(planned: impl IntoIterator<Item = &'a Planned<'a>>) -> Vec<String> {
    let warnings: std::collections::BTreeSet<String> =
        planned.into_iter().filter_map(unit_warning).collect();
    warnings.into_iter().collect()
}

/// The comment lines every export starts with.
pub fn header(
    src: &Source<'_>,
    format: &str,
    left: &[LeftOut],
    warnings: &[String],
) -> Vec<String> {
    let from = match &src.config.file {
        Some(f) => format!("{} (sha256 {})", f.path, f.sha256),
        None => "the built-in objectives".to_string(),
    };
    let mut lines = vec![
        format!("Exported by `cargo xtask gates export --format {format}` from {from}."),
        "Thresholds are the local gate's bounds, compared with each query's result as it is,"
            .into(),
        "in the unit the query returns: never rescaled.".into(),
    ];
    lines.extend(warnings.iter().cloned());
    if !left.is_empty() {
        lines.push("Left out, as the engine cannot express them or has no query for them:".into());
        for l in left {
            lines.push(format!(
                "  {} (stages {}): {}",
                l.metric,
                l.stages.join(", "),
                l.why
            ));
        }
    }
    lines
}

/// `metadata` of an exported resource.
pub fn metadata(src: &Source<'_>, name: &str, stage: &str) -> Value {
    let mut meta = json!({ "name": name });
    if let Some(ns) = &src.settings.namespace {
        meta["namespace"] = json!(ns);
    }
    meta["labels"] = json!({ "app.kubernetes.io/managed-by": "mc-gates-export" });
    meta["annotations"] = json!({ "golive.mc/stage": stage });
    meta
}

/// An export: the YAML text, and what was left out (for stderr).
#[derive(Clone, Debug)]
pub struct Rendered {
    pub text: String,
    pub left_out: Vec<LeftOut>,
    /// Lines for stderr besides the left-out list (Flagger's chosen stage).
    pub notes: Vec<String>,
}

/// The engines `gates export` writes for.
pub use crate::flags::ExportFormat as Format;

/// The name of `format` on the command line.
pub fn format_name(format: Format) -> &'static str {
    match format {
        Format::Argo => "argo",
        Format::Flagger => "flagger",
    }
}

/// Renders the export of `src` for `format`, of `stage` when given.
pub fn render(src: &Source<'_>, format: Format, stage: Option<&str>) -> Result<Rendered> {
    if let Some(name) = stage {
        src.config
            .stage(name)
            .map_err(|e| util::fail(exit::USAGE, e))?;
    }
    match format {
        Format::Argo => argo::render(src, stage),
        Format::Flagger => flagger::render(src, stage),
    }
}

/// `gates export` from the command line: render, then write `--out`
/// atomically or print to stdout; what was left out goes to stderr.
pub fn run(root: &Path, args: &crate::flags::ExportArgs) -> Result<u8> {
    let config = gates::Config::load(root, args.config.as_deref())?;
    let settings = &config.export;
    let address = settings
        .prometheus_url
        .as_deref()
        .or(config.prometheus.url.as_deref())
        .ok_or_else(|| {
            anyhow!(
                "no Prometheus address for the engine to query: set [prometheus] url, \
                 or [export] prometheus_url, in golive.toml"
            )
        })?;
    let queries = config
        .prometheus
        .queries
        .iter()
        .map(|(metric, q)| (metric.as_str(), q.promql.as_str()))
        .collect();
    let src = Source {
        config: &config,
        address,
        queries,
        settings,
    };
    let rendered = render(&src, args.format, args.stage.as_deref())?;
    // The manifests first: an error writing them is then the only line on stderr.
    if !emit(root, args, &rendered)? {
        return Ok(exit::OK);
    }
    for note in &rendered.notes {
        eprintln!("{note}");
    }
    for l in &rendered.left_out {
        eprintln!(
            "left out: {} (stages {}): {}",
            l.metric,
            l.stages.join(", "),
            l.why
        );
    }
    Ok(exit::OK)
}

/// Writes the manifests to `--out` (atomically) or stdout; `false` when
/// stdout was closed (`| head`), which ends the program quietly.
fn emit(root: &Path, args: &crate::flags::ExportArgs, rendered: &Rendered) -> Result<bool> {
    let Some(out) = &args.out else {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        return match stdout
            .write_all(rendered.text.as_bytes())
            .and_then(|()| stdout.flush())
        {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
            other => other.map(|()| true).context("cannot write to stdout"),
        };
    };
    let path = root.join(out);
    util::remove_stale_tmp(&path)?;
    util::write_atomic(&path, rendered.text.as_bytes())?;
    println!(
        "wrote {} manifests → {}",
        format_name(args.format),
        out.display()
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_names() {
        assert_eq!(k8s_name("GraphQL.reads.p95_ms"), "graphql-reads-p95-ms");
        assert_eq!(k8s_name("__a..b__"), "a-b");
        assert_eq!(k8s_name("canary_20"), "canary-20");
        assert_eq!(k8s_name("é"), "");
        assert!(check_name("mc-canary-20", 63).is_ok());
        for bad in ["", "-a", "a-", "A", "a_b", &"a".repeat(64)] {
            assert!(check_name(bad, 63).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn intervals_both_engines_accept() {
        for ok in ["30s", "1m", "90s", "15m"] {
            assert!(check_interval(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "m", "0s", "1h", "1m30s", "-1m", "1.5m", "1 m", "9999999s",
        ] {
            assert!(check_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn canary_weights_come_from_stage_names() {
        assert_eq!(flagger::canary_weight("canary_20"), Some(20));
        assert_eq!(flagger::canary_weight("canary_5"), Some(5));
        for no in [
            "canary_0",
            "canary_100",
            "canary_",
            "canary_x",
            "stage",
            "canary_+5",
        ] {
            assert_eq!(flagger::canary_weight(no), None, "{no}");
        }
    }

    #[test]
    fn export_settings_parse_and_validate() {
        let c = gates::Config::parse(
            "[export]\nname = \"shop\"\ncount = 3\ntarget_kind = \"DaemonSet\"\nport = 9000",
            "golive.toml",
        )
        .unwrap();
        assert_eq!(c.export.name, "shop");
        assert_eq!(c.export.count, 3);
        assert_eq!(c.export.target_kind, TargetKind::DaemonSet);
        assert_eq!(c.export.port, 9000);
        assert_eq!(c.export.interval, Settings::default().interval);
        for (text, needle) in [
            (
                "[export]\ncolour = 1",
                "line 2, column 1: unknown field `colour`",
            ),
            ("[export]\ncount = 0", "export.count: 0 is out of range"),
            ("[export]\nport = 0", "export.port: 0 is not a port"),
            (
                "[export]\nprometheus_url = \"prom:9090\"",
                "export.prometheus_url:",
            ),
            ("[export]\ntarget_kind = \"Pod\"", "line 2"),
            ("[export]\nnamespace = \"Shop\"", "export.namespace:"),
        ] {
            let err = format!(
                "{:#}",
                gates::Config::parse(text, "golive.toml").unwrap_err()
            );
            assert!(err.contains(needle), "{text:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn conditions_mirror_the_bounds() {
        let o = |bound, warn, required| Objective {
            bound,
            warn,
            required,
        };
        assert_eq!(
            argo::conditions(&o(Bound::Max(500.0), Some(1000.0), false)),
            (
                "len(result) > 0 && result[0] <= 500".to_string(),
                "len(result) > 0 && result[0] > 1000".to_string()
            )
        );
        assert_eq!(
            argo::conditions(&o(Bound::Min(99.9), None, true)),
            (
                "len(result) > 0 && result[0] >= 99.9".to_string(),
                "len(result) == 0 || isNaN(result[0]) || result[0] < 99.9".to_string()
            )
        );
    }
}
