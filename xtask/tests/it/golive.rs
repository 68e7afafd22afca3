//! `cargo xtask golive` end to end: the real binary on a temporary project.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::*;

const V: &str = "v0.3.2-mc";

fn golive(root: &Path) -> Command {
    let mut cmd = xtask(root);
    cmd.arg("golive");
    cmd
}

/// A temporary project with the real Cargo.lock, so build facts have one to hash.
fn project() -> tempfile::TempDir {
    let p = temp_project();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"),
        p.path().join("Cargo.lock"),
    )
    .unwrap();
    p
}

/// Every file under `root`, relative and sorted.
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_str().unwrap().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn golive_end_to_end_writes_every_output_and_a_bundle_that_verifies() {
    let p = project();
    let o = run(golive(p.path()).args(["--seed", "7"]));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let files = tree(p.path());
    for want in golive_outputs(V) {
        assert!(files.contains(&want), "{want} missing from {files:?}");
    }
    assert!(
        stdout(&o).contains("result: PASS (exit 0)"),
        "{}",
        stdout(&o)
    );
    let o = run(xtask(p.path()).args(["evidence", "verify", &format!("dist/evidence-{V}.json")]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));

    // A second run replaces its own outputs and leaves nothing else behind.
    let o = run(golive(p.path()).args(["--seed", "8"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        tree(p.path()),
        files,
        "the same files, no temporary leftovers"
    );
    assert_eq!(
        std::fs::read_to_string(p.path().join("out/sample.txt")).unwrap(),
        "hello evidence\n"
    );
    let decisions =
        std::fs::read_to_string(p.path().join(format!("out/a2a-decisions-{V}.jsonl"))).unwrap();
    for line in decisions.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("every decision line is JSON");
    }
    assert!(
        decisions.lines().count() >= 200,
        "probe and load were logged"
    );
}

#[test]
fn degraded_rehearsal_stops_at_the_first_failing_stage() {
    let p = project();
    assert_eq!(
        run(golive(p.path()).args(["--seed", "3"])).status.code(),
        Some(0)
    );
    let o = run(golive(p.path()).args([
        "--seed",
        "3",
        "--stages",
        "canary_20,canary_50,production",
        "--degrade",
        "GraphQL.reads.p95_ms=+200",
    ]));
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    let gate = |s: &str| p.path().join(format!("out/gates-{s}-{V}.json"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gate("canary_20")).unwrap()).unwrap();
    assert_eq!(report["result"], "FAIL");
    for stage in ["stage", "canary_50", "production"] {
        assert!(
            !gate(stage).exists(),
            "stale {stage} report from the first run is removed"
        );
    }
    let md = std::fs::read_to_string(p.path().join(format!("dist/golive-{V}.md"))).unwrap();
    assert!(md.contains("| canary_20 | FAIL |"), "{md}");
    assert!(md.contains("| canary_50 | NOT RUN |"), "{md}");
    assert!(md.contains("| production | NOT RUN |"), "{md}");
    // The evidence of a failed rollout is still packed and verified.
    let o = run(xtask(p.path()).args(["evidence", "verify", &format!("dist/evidence-{V}.json")]));
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn a2a_url_points_golive_at_a_separately_started_gateway() {
    let p = project();
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("decisions.jsonl");
    let gateway = xtask::a2a::Gateway::start(xtask::a2a::GatewayOptions {
        decision_log: Some(log.clone()),
        ..Default::default()
    })
    .unwrap();
    let o = run(golive(p.path())
        .args(["--seed", "7"])
        .env("A2A_URL", gateway.url()));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    gateway.shutdown().unwrap();
    let logged = std::fs::read_to_string(&log).unwrap().lines().count();
    assert!(
        logged >= 200,
        "the external gateway served the probe and the load ({logged})"
    );
    assert!(!p
        .path()
        .join(format!("out/a2a-decisions-{V}.jsonl"))
        .exists());
    let md = std::fs::read_to_string(p.path().join(format!("dist/golive-{V}.md"))).unwrap();
    assert!(md.contains("(A2A_URL)"), "{md}");
}

#[test]
fn an_unreachable_a2a_url_fails_the_rollout_before_the_first_stage() {
    let p = project();
    // A port that was free a moment ago: nothing listens there.
    let port = free_port();
    let o = run(golive(p.path()).env("A2A_URL", format!("http://127.0.0.1:{port}")));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let md = std::fs::read_to_string(p.path().join(format!("dist/golive-{V}.md"))).unwrap();
    assert!(md.contains("| stage | NOT RUN |"), "{md}");
}

#[test]
fn markdown_summary_snapshot() {
    let p = project();
    let o = run(golive(p.path()).args(["--seed", "42"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let md = std::fs::read_to_string(p.path().join(format!("dist/golive-{V}.md"))).unwrap();
    // Only what a measurement or the machine decides is redacted.
    let md = redact(&md, "http://127.0.0.1:", DIGITS, "", "[port]");
    let md = redact(&md, "p50 ", MS, " ms, p99 ", "[ms]");
    let md = redact(&md, ", p99 ", MS, " ms", "[ms]");
    let md = redact(&md, "| ", MS, " (<= 500) |", "[ms]");
    let md = redact(&md, "rustc: ", |c| c != '\n', "", "[rustc]");
    let md = redact(
        &md,
        "Cargo.lock sha256: ",
        |c| c.is_ascii_hexdigit(),
        "",
        "[sha256]",
    );
    insta_settings().bind(|| insta::assert_snapshot!("golive_summary_md", md));
}

const DIGITS: fn(char) -> bool = |c| c.is_ascii_digit();
const MS: fn(char) -> bool = |c| c.is_ascii_digit() || c == '.';

/// `text` with every run of `chars` that follows `before` and is followed by
/// `after` replaced by `with` (what insta's regex filters did, without
/// compiling `regex` into the tests).
fn redact(text: &str, before: &str, chars: fn(char) -> bool, after: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(before) {
        let start = i + before.len();
        out.push_str(&rest[..start]);
        let run = rest[start..]
            .find(|c| !chars(c))
            .map_or(rest.len(), |n| start + n);
        if run > start && rest[run..].starts_with(after) {
            out.push_str(with);
            rest = &rest[run..];
        } else {
            rest = &rest[start..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn failed_pre_merge_check_exits_4_and_rehearses_nothing() {
    let p = project();
    std::fs::write(
        p.path().join("Cargo.toml"),
        "[package]\nname = \"t\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::create_dir(p.path().join("src")).unwrap();
    std::fs::write(p.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    let o = run(golive(p.path()).args(["--checks", "fmt"]));
    assert_eq!(o.status.code(), Some(0), "well formatted: {}", stderr(&o));
    assert!(p.path().join(format!("out/checks-{V}.json")).exists());

    std::fs::write(p.path().join("src/main.rs"), "fn   main( ) {   }\n").unwrap();
    let o = run(golive(p.path()).args(["--checks", "fmt"]));
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    // The first run's gateway records are not left to be packed as this run's evidence.
    assert!(!p.path().join(format!("out/a2a-probe-{V}.json")).exists());
    assert!(!p
        .path()
        .join(format!("out/a2a-decisions-{V}.jsonl"))
        .exists());
    let md = std::fs::read_to_string(p.path().join(format!("dist/golive-{V}.md"))).unwrap();
    assert!(
        md.contains("| fmt | `cargo fmt --all -- --check` | FAILED |"),
        "{md}"
    );
    assert!(md.contains("| stage | NOT RUN |"), "{md}");

    // Without --checks, the stale checks record is not left to be packed.
    assert_eq!(run(&mut golive(p.path())).status.code(), Some(0));
    assert!(!p.path().join(format!("out/checks-{V}.json")).exists());
}

#[test]
fn bad_options_are_one_line_errors_that_write_nothing() {
    for (args, code, needle) in [
        (&["--stages", "stage,nope"][..], 2, "unknown stage \"nope\""),
        (&["--stages", "canary_50,stage"], 2, "out of rollout order"),
        (
            &["--checks", "lint"],
            2,
            "invalid value 'lint' for '--checks <LIST>'",
        ),
        (&["--version", "../x"], 2, "--version \"../x\""),
        (&["--degrade", "reads"], 2, "reads"),
        (&["--seed", "x"], 2, "invalid value 'x'"),
        (&["--config", "missing.toml"], 1, "missing.toml"),
    ] {
        let p = project();
        let o = run(golive(p.path()).args(args));
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("xtask: ") || first.starts_with("error: "),
            "{args:?}: {err}"
        );
        assert!(first.contains(needle), "{args:?}: {err}");
        assert_eq!(tree(p.path()), ["Cargo.lock", "out/sample.txt"], "{args:?}");
    }
}

#[test]
fn strict_refuses_the_development_key_before_doing_anything() {
    let p = project();
    let o = run(golive(p.path())
        .arg("--strict")
        .env_remove("MC_SIGNING_KEY"));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--strict refuses the development signing key"));
    assert_eq!(tree(p.path()), ["Cargo.lock", "out/sample.txt"]);
}

#[test]
fn github_step_summary_gets_the_markdown() {
    let p = project();
    let summary = p.path().join("step-summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let o = run(golive(p.path()).env("GITHUB_STEP_SUMMARY", &summary));
    assert_eq!(o.status.code(), Some(0));
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(
        text.starts_with("earlier step\n# Go-live rehearsal v0.3.2-mc: PASS"),
        "{text}"
    );
}

/// Debian's chromium, which `.ci/run` installs; outside CI the test says it
/// is skipped when the browser is missing, in CI it fails.
fn chromium() -> Option<&'static str> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if found.is_none() {
        common::skip("chromium is not installed (`apt-get install -y chromium`; .ci/run does)");
    }
    found
}

fn headless(browser: &str, profile: &Path) -> Command {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1100,1800",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

#[test]
fn html_report_renders_in_a_headless_browser() {
    let Some(browser) = chromium() else { return };
    let p = project();
    // A failed rollout exercises every kind of row: PASS, FAIL and NOT RUN.
    let o = run(golive(p.path()).args(["--seed", "5", "--degrade", "bad-release"]));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let html = p.path().join(format!("dist/golive-{V}.html"));
    let url = format!("file://{}", html.display());
    let profile = tempfile::tempdir().unwrap();

    // The DOM as the browser built it: the charts are there, one per metric.
    let o = run(headless(browser, profile.path())
        .arg("--dump-dom")
        .arg(&url));
    assert!(o.status.success(), "chromium --dump-dom: {}", stderr(&o));
    let dom = stdout(&o);
    assert!(dom.contains("<h1>Go-live rehearsal v0.3.2-mc"), "{dom}");
    let charts = dom.matches("<svg").count();
    assert!(charts >= 6, "{charts} charts in {dom}");
    for metric in ["GraphQL.reads.p95_ms", "availability", "utilization"] {
        assert!(
            dom.contains(&format!("<figcaption>{metric}</figcaption>")),
            "{metric}"
        );
    }
    assert!(
        dom.contains("class=\"bar fail\""),
        "the failing stage's bar is drawn as failing"
    );
    assert!(dom.contains("class=\"objective\""), "objectives are drawn");

    // A screenshot, taken without errors, that is a real PNG of the page.
    let shot = profile.path().join("report.png");
    let o = run(headless(browser, profile.path())
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url));
    assert!(o.status.success(), "chromium --screenshot: {}", stderr(&o));
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1100, 1800));
    assert!(
        png.len() > 20_000,
        "the page is not blank ({} bytes)",
        png.len()
    );
}
