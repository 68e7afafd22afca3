//! Reports people read: the terminal table, the Markdown summary (also fed to
//! `$GITHUB_STEP_SUMMARY`) and the self-contained HTML report with inline SVG
//! charts of observed value against objective, per metric and stage.
//!
//! Everything here renders one [`Summary`], a plain data structure that
//! `golive` fills in. Rendering is pure (no clock, no I/O), so the same
//! summary always gives the same bytes: that is what makes the snapshot tests
//! meaningful and the reports reviewable.

use std::fmt::Write as _;

use serde::Serialize;

use crate::gates::{Comparator, StageResult, Verdict};

/// Everything a go-live run found, in the order it found it.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub version: String,
    /// RFC 3339 time of the run (SOURCE_DATE_EPOCH when set).
    pub generated_at: String,
    pub seed: u64,
    pub strict: bool,
    /// `PASS`, `WARN` or `FAIL`.
    pub result: Verdict,
    pub exit_code: u8,
    pub facts: Facts,
    pub checks: Vec<CheckRun>,
    pub gateway: Option<GatewayRow>,
    pub stages: Vec<StageRow>,
    pub evidence: Option<EvidenceRow>,
    /// Anything a reader should know that fits nowhere else.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Facts {
    pub commit: Option<String>,
    pub dirty: Option<bool>,
    pub rustc: Option<String>,
    pub cargo_lock_sha256: Option<String>,
}

/// One pre-merge check (`--checks`).
#[derive(Debug, Clone, Serialize)]
pub struct CheckRun {
    pub name: String,
    pub command: String,
    pub ok: bool,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GatewayRow {
    pub url: String,
    pub in_process: bool,
    pub probe_ok: bool,
    pub allow: bool,
    pub residency_pass: bool,
    pub persisted_only: bool,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// What the A2A 1.0 probe saw; `None`: the gateway offers no A2A 1.0.
    pub a2a_v1: Option<String>,
}

/// One rollout stage: its verdict and every check of its gate.
#[derive(Debug, Clone, Serialize)]
pub struct StageRow {
    pub stage: String,
    pub result: StageResult,
    pub report: Option<String>,
    pub checks: Vec<CheckRow>,
    pub reasons: Vec<String>,
}

/// One objective of a gate. Values are numbers, booleans (policy checks) or
/// `null` (no data).
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    pub metric: String,
    pub observed: serde_json::Value,
    pub comparator: Comparator,
    pub threshold: serde_json::Value,
    pub verdict: Verdict,
    /// A regression check against the baseline (percent worse): shown in
    /// the stage details, not as a column or chart of its own.
    pub regression: bool,
    /// Where `observed` came from: `simulated`, `probe` or `prometheus`.
    pub source: String,
    /// The PromQL of a `prometheus` value.
    pub query: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvidenceRow {
    pub bundle: String,
    pub files: usize,
    pub signature_ok: bool,
    pub ok: bool,
    pub reasons: Vec<String>,
}

/// A number as people read it: integers plain, others with up to two decimals.
pub fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "no data".to_string(),
        v => v.as_f64().map_or_else(|| v.to_string(), num),
    }
}

fn observed_cell(c: &CheckRow) -> String {
    format!(
        "{} ({} {})",
        value_text(&c.observed),
        c.comparator,
        value_text(&c.threshold)
    )
}

/// The metrics with a number, in first-seen order across stages.
fn metrics(s: &Summary) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for st in &s.stages {
        for c in &st.checks {
            if c.observed.is_f64()
                && c.threshold.is_f64()
                && !c.regression
                && !out.contains(&c.metric)
            {
                out.push(c.metric.clone());
            }
        }
    }
    out
}

fn cell<'a>(st: &'a StageRow, metric: &str) -> Option<&'a CheckRow> {
    st.checks.iter().find(|c| c.metric == metric)
}

/// Where a metric's values came from, over every stage (`probe`,
/// `prometheus`, or both as `probe/prometheus` when stages differ).
fn source_of(s: &Summary, metric: &str) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for c in s.stages.iter().filter_map(|st| cell(st, metric)) {
        if !seen.contains(&c.source.as_str()) {
            seen.push(&c.source);
        }
    }
    seen.join("/")
}

/// Each Prometheus metric with the query of the first stage that ran it.
fn first_queries(s: &Summary) -> Vec<(&str, &str, &str)> {
    let mut out: Vec<(&str, &str, &str)> = Vec::new();
    for st in &s.stages {
        for c in st.checks.iter().filter(|c| !c.regression) {
            if let Some(q) = &c.query {
                if !out.iter().any(|(m, _, _)| *m == c.metric) {
                    out.push((&c.metric, &st.stage, q));
                }
            }
        }
    }
    out
}

/// The table printed on the terminal at the end of a run.
pub fn terminal(s: &Summary) -> String {
    let metrics = metrics(s);
    let mut rows = vec![
        {
            let mut h = vec!["stage".to_string(), "verdict".to_string()];
            h.extend(metrics.iter().cloned());
            h
        },
        {
            let mut h = vec!["source".to_string(), String::new()];
            h.extend(metrics.iter().map(|m| source_of(s, m)));
            h
        },
    ];
    for st in &s.stages {
        let mut r = vec![st.stage.clone(), st.result.to_string()];
        for m in &metrics {
            r.push(cell(st, m).map_or("-".to_string(), observed_cell));
        }
        rows.push(r);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, r) in rows.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
        if n == 1 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "{}", rule.join("  "));
        }
    }
    for (metric, stage, query) in first_queries(s) {
        let _ = writeln!(out, "{metric} (prometheus, {stage}): {query}");
    }
    if let Some(e) = &s.evidence {
        let _ = writeln!(
            out,
            "evidence: {} ({} files): {}",
            e.bundle,
            e.files,
            if e.ok { "verified" } else { "NOT VERIFIED" }
        );
    }
    let _ = writeln!(out, "result: {} (exit {})", s.result, s.exit_code);
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown summary (`dist/golive-<version>.md`).
pub fn markdown(s: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Go-live rehearsal {}: {}\n", s.version, s.result);
    let _ = writeln!(
        o,
        "Run at {}, seed {}{}.\n",
        s.generated_at,
        s.seed,
        if s.strict { ", strict" } else { "" }
    );
    let _ = writeln!(o, "## Build\n");
    let f = &s.facts;
    let _ = writeln!(
        o,
        "- commit: {}{}",
        f.commit.as_deref().unwrap_or("(not a git repository)"),
        match f.dirty {
            Some(true) => " (dirty)",
            _ => "",
        }
    );
    let _ = writeln!(
        o,
        "- rustc: {}",
        f.rustc.as_deref().unwrap_or("(not found)")
    );
    let _ = writeln!(
        o,
        "- Cargo.lock sha256: {}\n",
        f.cargo_lock_sha256.as_deref().unwrap_or("(no Cargo.lock)")
    );
    if !s.checks.is_empty() {
        let _ = writeln!(
            o,
            "## Pre-merge checks\n\n| check | command | result | seconds |\n|---|---|---|---:|"
        );
        for c in &s.checks {
            let _ = writeln!(
                o,
                "| {} | `{}` | {} | {:.1} |",
                c.name,
                md_escape(&c.command),
                if c.ok { "ok" } else { "FAILED" },
                c.seconds
            );
        }
        o.push('\n');
    }
    if let Some(g) = &s.gateway {
        let _ = writeln!(o, "## A2A gateway\n");
        let _ = writeln!(
            o,
            "- {} ({})",
            g.url,
            if g.in_process {
                "in-process"
            } else {
                "A2A_URL"
            }
        );
        let _ = writeln!(
            o,
            "- probe: {}, example request {}",
            if g.probe_ok { "ok" } else { "FAILED" },
            if g.allow { "allowed" } else { "denied" }
        );
        let _ = writeln!(
            o,
            "- policy enforced: residency {}, persisted queries only {}",
            yes(g.residency_pass),
            yes(g.persisted_only)
        );
        let _ = writeln!(o, "- A2A 1.0: {}", a2a_v1_text(g));
        let _ = writeln!(
            o,
            "- load: {} requests, {} errors, p50 {} ms, p99 {} ms\n",
            g.requests,
            g.errors,
            num(g.p50_ms),
            num(g.p99_ms)
        );
    }
    let _ = writeln!(o, "## Stages\n");
    let metrics = metrics(s);
    let _ = write!(o, "| stage | verdict |");
    for m in &metrics {
        let _ = write!(o, " {} |", md_escape(m));
    }
    let _ = write!(o, "\n|---|---|");
    for _ in &metrics {
        o.push_str("---|");
    }
    o.push('\n');
    let _ = write!(o, "| *source* | |");
    for m in &metrics {
        let _ = write!(o, " {} |", source_of(s, m));
    }
    o.push('\n');
    for st in &s.stages {
        let _ = write!(o, "| {} | {} |", st.stage, st.result);
        for m in &metrics {
            let _ = write!(o, " {} |", cell(st, m).map_or("-".into(), observed_cell));
        }
        o.push('\n');
    }
    let reasons: Vec<_> = s
        .stages
        .iter()
        .filter(|st| !st.reasons.is_empty())
        .collect();
    if !reasons.is_empty() {
        o.push('\n');
        for st in reasons {
            for r in &st.reasons {
                let _ = writeln!(o, "- {}: {}", st.stage, md_escape(r));
            }
        }
    }
    o.push('\n');
    let queried: Vec<_> = s
        .stages
        .iter()
        .flat_map(|st| st.checks.iter().map(move |c| (st, c)))
        .filter(|(_, c)| !c.regression && c.query.is_some())
        .collect();
    if !queried.is_empty() {
        let _ = writeln!(o, "## Prometheus queries\n");
        for (st, c) in queried {
            let q = c.query.as_deref().unwrap_or_default();
            let _ = writeln!(
                o,
                "- {} {}: `{}`",
                st.stage,
                md_escape(&c.metric),
                md_escape(q)
            );
        }
        o.push('\n');
    }
    if let Some(e) = &s.evidence {
        let _ = writeln!(o, "## Evidence\n");
        let _ = writeln!(
            o,
            "- `{}`: {} files, signature {}, {}",
            e.bundle,
            e.files,
            if e.signature_ok { "ok" } else { "BAD" },
            if e.ok { "verified" } else { "NOT VERIFIED" }
        );
        for r in &e.reasons {
            let _ = writeln!(o, "- {}", md_escape(r));
        }
        o.push('\n');
    }
    for n in &s.notes {
        let _ = writeln!(o, "> {}", md_escape(n));
    }
    if !s.notes.is_empty() {
        o.push('\n');
    }
    let _ = writeln!(o, "Result: **{}** (exit code {}).", s.result, s.exit_code);
    o
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "NO"
    }
}

fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The CSS class of a verdict or a stage's result.
fn verdict_class(v: impl Into<StageResult>) -> &'static str {
    match v.into() {
        StageResult::Pass => "pass",
        StageResult::Warn => "warn",
        StageResult::Fail => "fail",
        StageResult::NoData | StageResult::NotRun => "none",
    }
}

/// One chart: a bar per stage for the observed value and a tick for its
/// objective. The axis starts above zero when all values sit far from it
/// (availability around 99.9 %), so differences stay visible.
fn chart(s: &Summary, metric: &str) -> String {
    const W: f64 = 420.0;
    const H: f64 = 220.0;
    const LEFT: f64 = 56.0;
    const BOTTOM: f64 = 28.0;
    const TOP: f64 = 12.0;
    let points: Vec<(&str, Option<&CheckRow>)> = s
        .stages
        .iter()
        .map(|st| (st.stage.as_str(), cell(st, metric)))
        .collect();
    let values: Vec<f64> = points
        .iter()
        .filter_map(|(_, c)| *c)
        .flat_map(|c| c.observed.as_f64().into_iter().chain(c.threshold.as_f64()))
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = (hi - lo).max(hi.abs() * 0.01).max(1e-9);
    let axis_lo = if lo - span * 1.5 > 0.0 {
        lo - span * 1.5
    } else {
        0.0
    };
    let axis_hi = hi + span * 0.25;
    let y = |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - (v - axis_lo) / (axis_hi - axis_lo));
    let slot = (W - LEFT - 8.0) / points.len().max(1) as f64;
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<figure class="chart" title="source: {src}"><figcaption>{m}</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{m}: observed against objective per stage">"#,
        m = html_escape(metric),
        src = html_escape(&source_of(s, metric))
    );
    let _ = write!(
        o,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b}" stroke="#888"/><line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}" stroke="#888"/><text x="{tx}" y="{ty1}" class="axis">{hi}</text><text x="{tx}" y="{ty2}" class="axis">{lo}</text>"##,
        b = H - BOTTOM,
        r = W - 4.0,
        tx = LEFT - 4.0,
        ty1 = TOP + 8.0,
        ty2 = H - BOTTOM,
        hi = num(axis_hi),
        lo = num(axis_lo)
    );
    for (i, (stage, c)) in points.iter().enumerate() {
        let x = LEFT + slot * i as f64 + slot * 0.2;
        let bw = slot * 0.6;
        let _ = write!(
            o,
            r#"<text x="{cx}" y="{ly}" class="label">{s}</text>"#,
            cx = x + bw / 2.0,
            ly = H - 10.0,
            s = html_escape(stage)
        );
        let Some(c) = c else { continue };
        if let Some(v) = c.observed.as_f64() {
            let top = y(v).min(H - BOTTOM - 1.0);
            let _ = write!(
                o,
                r#"<rect class="bar {cls}" x="{x:.1}" y="{top:.1}" width="{bw:.1}" height="{h:.1}"><title>{s}: observed {v}</title></rect><text x="{cx:.1}" y="{vy:.1}" class="value">{v}</text>"#,
                cls = verdict_class(c.verdict),
                h = H - BOTTOM - top,
                s = html_escape(stage),
                v = num(v),
                cx = x + bw / 2.0,
                vy = top - 3.0
            );
        }
        if let Some(t) = c.threshold.as_f64() {
            let _ = write!(
                o,
                r#"<line class="objective" x1="{x1:.1}" x2="{x2:.1}" y1="{ty:.1}" y2="{ty:.1}"><title>{s}: objective {cmp} {t}</title></line>"#,
                x1 = x - 4.0,
                x2 = x + bw + 4.0,
                ty = y(t),
                s = html_escape(stage),
                cmp = html_escape(c.comparator.as_str()),
                t = num(t)
            );
        }
    }
    o.push_str("</svg></figure>\n");
    o
}

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}\
h1 .pass,h1 .warn,h1 .fail{padding:0 .4em;border-radius:4px}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}\
.pass{background:#d9f2d9}.warn{background:#fff1c2}.fail{background:#f8d0d0}.none{background:#eee}\
.charts{display:flex;flex-wrap:wrap;gap:1em}.chart{margin:0}figcaption{font-weight:600}\
svg .bar.pass{fill:#4caf50}svg .bar.warn{fill:#e0a800}svg .bar.fail{fill:#d9534f}svg .bar.none{fill:#999}\
svg .objective{stroke:#222;stroke-width:2;stroke-dasharray:4 2}svg text{font-size:11px;text-anchor:middle}\
svg .axis{text-anchor:end;fill:#666}\
code{background:#f4f4f4;padding:0 .2em}";

/// The self-contained HTML report (`dist/golive-<version>.html`): no scripts,
/// no external resources, charts as inline SVG.
pub fn html(s: &Summary) -> String {
    let e = html_escape;
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Go-live rehearsal {v}: {r}</title><style>{CSS}</style></head><body>\n",
        v = e(&s.version),
        r = e(s.result.as_str())
    );
    let _ = writeln!(
        o,
        "<h1>Go-live rehearsal {} <span class=\"{}\">{}</span></h1>",
        e(&s.version),
        verdict_class(s.result),
        e(s.result.as_str())
    );
    let _ = writeln!(
        o,
        "<p>Run at {}, seed {}{}; exit code {}.</p>",
        e(&s.generated_at),
        s.seed,
        if s.strict { ", strict" } else { "" },
        s.exit_code
    );
    let f = &s.facts;
    let _ = writeln!(
        o,
        "<h2>Build</h2><table><tr><th>commit</th><td><code>{}</code>{}</td></tr><tr><th>rustc</th><td>{}</td></tr><tr><th>Cargo.lock sha256</th><td><code>{}</code></td></tr></table>",
        e(f.commit.as_deref().unwrap_or("(not a git repository)")),
        if f.dirty == Some(true) { " (dirty)" } else { "" },
        e(f.rustc.as_deref().unwrap_or("(not found)")),
        e(f.cargo_lock_sha256.as_deref().unwrap_or("(no Cargo.lock)"))
    );
    if !s.checks.is_empty() {
        o.push_str("<h2>Pre-merge checks</h2><table><tr><th>check</th><th>command</th><th>result</th><th>seconds</th></tr>\n");
        for c in &s.checks {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td><code>{}</code></td><td class=\"{}\">{}</td><td>{:.1}</td></tr>",
                e(&c.name),
                e(&c.command),
                if c.ok { "pass" } else { "fail" },
                if c.ok { "ok" } else { "FAILED" },
                c.seconds
            );
        }
        o.push_str("</table>\n");
    }
    if let Some(g) = &s.gateway {
        let _ = writeln!(
            o,
            "<h2>A2A gateway</h2><table><tr><th>url</th><td><code>{}</code> ({})</td></tr><tr><th>probe</th><td class=\"{}\">{}; example request {}</td></tr><tr><th>policy enforced</th><td>residency {}, persisted queries only {}</td></tr><tr><th>A2A 1.0</th><td>{}</td></tr><tr><th>load</th><td>{} requests, {} errors, p50 {} ms, p99 {} ms</td></tr></table>",
            e(&g.url),
            if g.in_process { "in-process" } else { "A2A_URL" },
            if g.probe_ok { "pass" } else { "fail" },
            if g.probe_ok { "ok" } else { "FAILED" },
            if g.allow { "allowed" } else { "denied" },
            yes(g.residency_pass),
            yes(g.persisted_only),
            e(&a2a_v1_text(g)),
            g.requests,
            g.errors,
            num(g.p50_ms),
            num(g.p99_ms)
        );
    }
    o.push_str("<h2>Stages</h2>\n<table><tr><th>stage</th><th>verdict</th><th>why</th></tr>\n");
    for st in &s.stages {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            e(&st.stage),
            verdict_class(st.result),
            e(st.result.as_str()),
            st.reasons
                .iter()
                .map(|r| e(r))
                .collect::<Vec<_>>()
                .join("<br>")
        );
    }
    o.push_str("</table>\n<h2>Observed against objective</h2>\n<p>Bars: observed value, coloured by verdict. Dashed lines: the stage's objective.</p>\n<div class=\"charts\">\n");
    for m in metrics(s) {
        o.push_str(&chart(s, &m));
    }
    o.push_str("</div>\n<h2>Every check</h2>\n");
    for st in s.stages.iter().filter(|st| !st.checks.is_empty()) {
        let _ = writeln!(
            o,
            "<h3>{}</h3><table><tr><th>metric</th><th>observed</th><th>objective</th><th>verdict</th><th>source</th></tr>",
            e(&st.stage)
        );
        for c in &st.checks {
            let source = match &c.query {
                Some(q) => format!("{}: <code>{}</code>", e(&c.source), e(q)),
                None => e(&c.source),
            };
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{} {}</td><td class=\"{}\">{}</td><td>{source}</td></tr>",
                e(&c.metric),
                e(&value_text(&c.observed)),
                e(c.comparator.as_str()),
                e(&value_text(&c.threshold)),
                verdict_class(c.verdict),
                e(c.verdict.as_str())
            );
        }
        o.push_str("</table>\n");
    }
    if let Some(ev) = &s.evidence {
        let _ = writeln!(
            o,
            "<h2>Evidence</h2><p class=\"{}\"><code>{}</code>: {} files, signature {}, {}</p>",
            if ev.ok { "pass" } else { "fail" },
            e(&ev.bundle),
            ev.files,
            if ev.signature_ok { "ok" } else { "BAD" },
            if ev.ok { "verified" } else { "NOT VERIFIED" }
        );
    }
    for n in &s.notes {
        let _ = writeln!(o, "<p><em>{}</em></p>", e(n));
    }
    o.push_str("</body></html>\n");
    o
}

/// The gateway's A2A 1.0 line of the reports.
fn a2a_v1_text(g: &GatewayRow) -> String {
    g.a2a_v1
        .clone()
        .unwrap_or_else(|| "not offered (no agent card with a JSON-RPC 1.x interface)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(320.0), "320");
        assert_eq!(num(99.93), "99.93");
        assert_eq!(num(60.25), "60.25");
        assert_eq!(num(0.5), "0.5");
    }

    #[test]
    fn html_escapes_everything_it_prints() {
        assert_eq!(
            html_escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
