//! `slo snapshot` and `gates` through the real binary, in temporary projects.
//! Reports and snapshots are deterministic (fixed seed, `SOURCE_DATE_EPOCH`),
//! so their insta snapshots need no redaction.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::{insta_settings, run, stderr, stdout, temp_project, xtask};

const STAGES: [&str; 4] = ["stage", "canary_20", "canary_50", "production"];

fn xt(root: &Path, args: &[&str]) -> Output {
    run(xtask(root).args(args))
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn json(root: &Path, rel: &str) -> serde_json::Value {
    serde_json::from_str(&read(root, rel)).unwrap()
}

#[track_caller]
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
}

/// A failure the user caused: exit 1, one line on stderr naming `needle`.
#[track_caller]
/// A one-line error with exit 1 (bad input file) or 2 (bad option value).
fn assert_one_line_error_code(o: &Output, code: i32, needle: &str) {
    common::assert_one_line_error(o, "xtask", code, needle);
}

fn assert_one_line_error(o: &Output, needle: &str) {
    assert_one_line_error_code(o, 1, needle);
}

fn snapshot(root: &Path, out: &str, extra: &[&str]) {
    let mut args = vec!["slo", "snapshot", "--out", out];
    args.extend_from_slice(extra);
    assert_exit(&xt(root, &args), 0);
}

#[test]
fn slo_snapshot_is_reproducible() {
    let p = temp_project();
    snapshot(p.path(), "out/slo.json", &["--seed", "7"]);
    let text = read(p.path(), "out/slo.json");
    insta_settings().bind(|| insta::assert_snapshot!("slo_snapshot", text));

    // The same seed from MC_SEED gives the same file.
    let o = run(xtask(p.path()).env("MC_SEED", "7").args([
        "slo",
        "snapshot",
        "--out",
        "out/again.json",
    ]));
    assert_exit(&o, 0);
    assert_eq!(read(p.path(), "out/again.json"), text);
}

#[test]
fn slo_snapshot_records_its_random_seed_for_replay() {
    let p = temp_project();
    snapshot(p.path(), "out/a.json", &[]);
    let seed = json(p.path(), "out/a.json")["seed"]
        .as_u64()
        .expect("a seed");
    snapshot(p.path(), "out/b.json", &["--seed", &seed.to_string()]);
    assert_eq!(read(p.path(), "out/a.json"), read(p.path(), "out/b.json"));
}

#[test]
fn slo_snapshot_degraded() {
    let p = temp_project();
    let args = [
        "--seed",
        "7",
        "--degrade",
        "GraphQL.reads.p95_ms=+200",
        "--degrade",
        "availability=-0.5",
    ];
    snapshot(p.path(), "out/bad.json", &args);
    let text = read(p.path(), "out/bad.json");
    insta_settings().bind(|| insta::assert_snapshot!("slo_snapshot_degraded", text));
}

#[test]
fn slo_snapshot_rejects_bad_degrade_and_seed() {
    let p = temp_project();
    let o = xt(
        p.path(),
        &[
            "slo",
            "snapshot",
            "--out",
            "out/x.json",
            "--degrade",
            "reads=+1",
        ],
    );
    assert_one_line_error_code(&o, 2, "unknown metric \"reads\"");
    let o = xt(
        p.path(),
        &[
            "slo",
            "snapshot",
            "--out",
            "out/x.json",
            "--degrade",
            "oops",
        ],
    );
    assert_one_line_error_code(&o, 2, "expected METRIC=DELTA");
    let o = run(xtask(p.path()).env("MC_SEED", "seven").args([
        "slo",
        "snapshot",
        "--out",
        "out/x.json",
    ]));
    assert_one_line_error(&o, "MC_SEED=\"seven\"");
    assert!(!p.path().join("out/x.json").exists());
}

#[test]
fn gates_report_of_every_stage() {
    let p = temp_project();
    snapshot(p.path(), "out/slo-baseline.json", &["--seed", "7"]);
    for stage in STAGES {
        let report = format!("out/gates-{stage}.json");
        let o = xt(
            p.path(),
            &[
                "gates",
                "--stage",
                stage,
                "--strict",
                "--seed",
                "7",
                "--baseline",
                "out/slo-baseline.json",
                "--report",
                &report,
            ],
        );
        assert_exit(&o, 0);
        assert!(stdout(&o).contains(&format!("{stage}: PASS")));
        let text = read(p.path(), &report);
        insta_settings().bind(|| insta::assert_snapshot!(format!("gates_{stage}"), text));
    }
}

#[test]
fn gates_pass_a_fresh_snapshot_at_every_stage_under_strict() {
    let p = temp_project();
    for seed in ["0", "1", "99", "18446744073709551615"] {
        snapshot(p.path(), "out/slo.json", &["--seed", seed]);
        for stage in STAGES {
            let args = [
                "gates",
                "--stage",
                stage,
                "--strict",
                "--slo",
                "out/slo.json",
            ];
            let o = xt(p.path(), &[&args[..], &["--report", "out/g.json"]].concat());
            assert_exit(&o, 0);
        }
    }
}

/// A snapshot whose reads (342 + 60 = 402 ms) sit in canary_20's warning band.
fn warn_setup() -> tempfile::TempDir {
    let p = temp_project();
    let args = ["--seed", "7", "--degrade", "GraphQL.reads.p95_ms=+60"];
    snapshot(p.path(), "out/slo-slow.json", &args);
    p
}

const WARN_ARGS: [&str; 7] = [
    "gates",
    "--stage",
    "canary_20",
    "--slo",
    "out/slo-slow.json",
    "--report",
    "out/gates-warn.json",
];

#[test]
fn gates_warn_case() {
    let p = warn_setup();
    let o = xt(p.path(), &WARN_ARGS);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("canary_20: WARN: GraphQL.reads.p95_ms = 402 is in the warning band")
    );
    let text = read(p.path(), "out/gates-warn.json");
    insta_settings().bind(|| insta::assert_snapshot!("gates_warn", text));
}

#[test]
fn strict_turns_warn_into_a_failing_exit() {
    let p = warn_setup();
    let o = xt(p.path(), &[&WARN_ARGS[..], &["--strict"]].concat());
    assert_exit(&o, 3);
    assert_eq!(
        stderr(&o),
        "xtask: gate canary_20: WARN (--strict): GraphQL.reads.p95_ms = 402 is in the warning \
         band (pass <= 380, warn <= 420)\n"
    );
    let report = json(p.path(), "out/gates-warn.json");
    assert_eq!(report["result"], "WARN");
    assert_eq!(report["strict"], true);
}

#[test]
fn degraded_rehearsal_fails_the_canary_gate() {
    let p = temp_project();
    let o = xt(
        p.path(),
        &[
            "gates",
            "--stage",
            "canary_20",
            "--seed",
            "7",
            "--degrade",
            "GraphQL.reads.p95_ms=+200",
            "--report",
            "out/gates-fail.json",
        ],
    );
    assert_exit(&o, 3);
    assert!(stderr(&o).starts_with("xtask: gate canary_20: FAIL: GraphQL.reads.p95_ms = "));
    let text = read(p.path(), "out/gates-fail.json");
    insta_settings().bind(|| insta::assert_snapshot!("gates_fail", text));

    // The same rehearsal through a degraded snapshot, and through the profile.
    for degrade in ["GraphQL.reads.p95_ms=+200", "bad-release"] {
        snapshot(p.path(), "out/slo-bad.json", &["--degrade", degrade]);
        let o = xt(
            p.path(),
            &[
                "gates",
                "--stage",
                "canary_20",
                "--slo",
                "out/slo-bad.json",
                "--report",
                "out/g.json",
            ],
        );
        assert_exit(&o, 3);
        assert_eq!(json(p.path(), "out/g.json")["result"], "FAIL");
    }
}

#[test]
fn config_override_from_toml() {
    let p = temp_project();
    snapshot(p.path(), "out/slo.json", &["--seed", "7"]);
    let gates = |extra: &[&str]| {
        let args = ["gates", "--stage", "canary_20", "--slo", "out/slo.json"];
        xt(
            p.path(),
            &[&args[..], &["--report", "out/g.json"], extra].concat(),
        )
    };
    assert_exit(&gates(&[]), 0);

    // golive.toml in the root is read by default: a tighter read objective fails.
    let strict_reads = "[objectives.canary_20]\n\"GraphQL.reads.p95_ms\" = { max = 300 }\n";
    std::fs::write(p.path().join("golive.toml"), strict_reads).unwrap();
    let o = gates(&[]);
    assert_exit(&o, 3);
    assert!(
        stderr(&o).contains("GraphQL.reads.p95_ms = 342 fails (<= 300)"),
        "{}",
        stderr(&o)
    );
    let report = json(p.path(), "out/g.json");
    assert_eq!(report["inputs"]["config"]["path"], "golive.toml");
    assert_eq!(
        report["inputs"]["config"]["sha256"].as_str().unwrap().len(),
        64
    );

    // --config names another file; stages can be renamed and reordered.
    let custom = r#"
        stages = ["canary_5", "production"]
        [objectives.canary_5]
        availability = { min = 99.0, required = true }
        residency_pass = { equals = true, required = true }
    "#;
    std::fs::write(p.path().join("gates.toml"), custom).unwrap();
    let o = xt(
        p.path(),
        &[
            "gates",
            "--config",
            "gates.toml",
            "--stage",
            "canary_5",
            "--seed",
            "1",
            "--report",
            "out/g.json",
        ],
    );
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("residency_pass: no data, and the objective is required"));
    let o = xt(
        p.path(),
        &[
            "gates",
            "--config",
            "gates.toml",
            "--stage",
            "canary_20",
            "--report",
            "out/g.json",
        ],
    );
    assert_one_line_error_code(
        &o,
        2,
        "unknown stage \"canary_20\" (stages: canary_5, production)",
    );
}

#[test]
fn probe_results_feed_the_policy_checks() {
    let p = temp_project();
    let probe = |residency: bool| {
        let text = format!(
            r#"{{"ok": true, "policy": {{"residency_pass": {residency}, "persisted_only": true}}}}"#
        );
        std::fs::write(p.path().join("out/probe.json"), text).unwrap();
        xt(
            p.path(),
            &[
                "gates",
                "--stage",
                "stage",
                "--seed",
                "3",
                "--strict",
                "--probe",
                "out/probe.json",
                "--report",
                "out/g.json",
            ],
        )
    };
    assert_exit(&probe(true), 0);
    let report = json(p.path(), "out/g.json");
    assert_eq!(report["policy"]["residency_pass"], true);
    assert_eq!(report["inputs"]["policy_from"], "probe");
    let o = probe(false);
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("residency_pass = false fails (== true)"));
}

#[test]
fn measured_snapshots_are_judged_too() {
    let p = temp_project();
    let measured = r#"{"version": "v0.3.2-mc", "capturedAt": "2023-11-14T22:13:20Z",
        "source": "measured",
        "endpoints": {"A2A.perform.p50_ms": 2.1, "A2A.perform.p95_ms": 7.5, "A2A.perform.p99_ms": 11.0},
        "availability": 100.0, "requests": 200, "errors": 0,
        "policy": {"residency_pass": true, "persisted_only": true}}"#;
    std::fs::write(p.path().join("out/measured.json"), measured).unwrap();
    let o = xt(
        p.path(),
        &[
            "gates",
            "--stage",
            "production",
            "--strict",
            "--slo",
            "out/measured.json",
            "--report",
            "out/g.json",
        ],
    );
    assert_exit(&o, 0);
    let report = json(p.path(), "out/g.json");
    assert_eq!(report["inputs"]["source"], "measured");
    assert_eq!(report["inputs"]["policy_from"], "slo");
    let a2a = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metric"] == "A2A.perform.p95_ms");
    assert_eq!(a2a.unwrap()["verdict"], "PASS");
}

#[test]
fn malformed_inputs_are_one_line_errors() {
    let p = temp_project();
    let root = p.path();
    std::fs::write(root.join("out/bad.json"), "{\"version\": ").unwrap();
    std::fs::write(root.join("out/empty.json"), "{}").unwrap();
    std::fs::write(
        root.join("bad.toml"),
        "[objectives.canary_20]\nreads = { max = \"fast\" }\n",
    )
    .unwrap();
    std::fs::write(root.join("unknown.toml"), "[regresion]\nmax_pct = 1\n").unwrap();
    let base = ["gates", "--stage", "canary_20", "--report", "out/g.json"];
    for (extra, needle) in [
        (
            &["--slo", "out/missing.json"][..],
            "cannot read out/missing.json: ",
        ),
        (
            &["--slo", "out/bad.json"],
            "out/bad.json: not an SLO snapshot: ",
        ),
        (
            &["--slo", "out/empty.json"],
            "out/empty.json: not an SLO snapshot: missing field",
        ),
        (
            &["--baseline", "out/bad.json"],
            "out/bad.json: not an SLO snapshot",
        ),
        (
            &["--probe", "out/empty.json"],
            "out/empty.json: not an A2A probe result",
        ),
        (&["--config", "missing.toml"], "cannot read missing.toml"),
        (&["--config", "bad.toml"], "bad.toml: line 2, column"),
        (
            &["--config", "unknown.toml"],
            "unknown.toml: line 1, column 2: unknown field `regresion`",
        ),
    ] {
        let o = xt(root, &[&base[..], extra].concat());
        assert_one_line_error(&o, needle);
        assert!(!root.join("out/g.json").exists(), "no report on bad input");
    }

    // A malformed golive.toml in the root is found and reported too.
    std::fs::copy(root.join("bad.toml"), root.join("golive.toml")).unwrap();
    assert_one_line_error(&xt(root, &base), "golive.toml: line 2, column");
}
