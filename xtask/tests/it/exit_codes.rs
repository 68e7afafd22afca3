//! The README's exit-code table, command by command: every documented
//! failure of every command ends with its code and one line on stderr saying
//! why, and a closed stdout ends a command quietly.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::*;

/// `cargo xtask` in `root` without a signing key (the development key).
fn dev_key(root: &Path) -> Command {
    let mut cmd = xtask(root);
    cmd.env_remove("MC_SIGNING_KEY");
    cmd
}

fn ok(cmd: &mut Command) {
    let o = run(cmd);
    assert!(o.status.success(), "{cmd:?}: {}", stderr(&o));
}

#[test]
fn every_documented_failure_ends_with_its_code() {
    let project = temp_project();
    let root = project.path();
    ok(xtask(root).args(["evidence", "pack", "--out", "dist/b.json"]));
    ok(dev_key(root).args(["evidence", "pack", "--out", "dist/dev.json"]));
    std::fs::write(root.join("out/sample.txt"), "changed\n").unwrap();
    std::fs::write(root.join("bad.json"), "{").unwrap();
    let degrade = "GraphQL.reads.p95_ms=+200";

    // (command line, exit code, what its one error line says)
    #[rustfmt::skip]
    let cases: Vec<(Vec<&str>, i32, &str, Option<Command>)> = vec![
        // evidence pack
        (vec!["evidence", "pack", "--out", "dist/x.json", "--dir", "gone"], 1, "cannot read directory gone", None),
        (vec!["evidence", "pack", "--strict", "--out", "dist/x.json"], 1, "--strict refuses the development signing key", Some(dev_key(root))),
        // evidence verify
        (vec!["evidence", "verify", "dist/b.json"], 2, "dist/b.json does not verify: 1 file(s) changed", None),
        (vec!["evidence", "verify", "bad.json"], 2, "malformed bundle bad.json", None),
        (vec!["evidence", "verify", "dist/none.json"], 2, "cannot read dist/none.json", None),
        (vec!["evidence", "verify", "--strict", "dist/dev.json"], 1, "--strict refuses the development signing key", Some(dev_key(root))),
        // slo snapshot
        (vec!["slo", "snapshot", "--out", "out/s.json", "--degrade", "nope=+1"], 2, "nope", None),
        // gates
        (vec!["gates", "--stage", "nope", "--report", "r.json"], 2, "unknown stage", None),
        (vec!["gates", "--stage", "canary_20", "--seed", "1", "--degrade", degrade, "--report", "r.json"], 3, "gate canary_20: FAIL", None),
        (vec!["gates", "--stage", "canary_20", "--slo", "bad.json", "--report", "r.json"], 1, "bad.json", None),
        // golive
        (vec!["golive", "--stages", "nope"], 2, "--stages: unknown stage", None),
        (vec!["golive", "--version", "../x"], 2, "--version", None),
        (vec!["golive", "--strict"], 1, "--strict refuses the development signing key", Some(dev_key(root))),
        (vec!["golive", "--seed", "1", "--degrade", degrade], 3, "gate stage failed: the rollout stops there", None),
        // `cargo fmt` fails in a folder without Cargo.toml.
        (vec!["golive", "--checks", "fmt"], 4, "a pre-merge check failed", None),
        // a2a
        (vec!["a2a", "probe", "--url", "http://127.0.0.1:1"], 1, "127.0.0.1:1", None),
        (vec!["a2a", "serve", "--addr", "127.0.0.1:0", "--policy", "missing.rego"], 1, "missing.rego", None),
    ];
    for (args, code, needle, cmd) in cases {
        let mut cmd = cmd.unwrap_or_else(|| xtask(root));
        let o = run_within(cmd.args(&args), std::time::Duration::from_secs(120));
        let line = if args.contains(&"--checks") {
            // cargo fmt's own complaint goes to stderr too.
            assert_error_line_among_others(&o, "xtask", code, needle)
        } else {
            assert_one_line_error(&o, "xtask", code, needle)
        };
        assert!(!line.contains('\n'), "{args:?}");
    }
}

#[test]
fn bad_command_lines_are_usage_errors() {
    let project = temp_project();
    let root = project.path();
    for (args, needle) in [
        (&["evidence", "pack"][..], "--out"),
        (&["evidence", "verify"], "FILE"),
        (&["gates", "--report", "r.json"], "--stage"),
        (&["golive", "--seed", "x"], "--seed"),
        (
            &["golive", "--checks", "fmt,lint"],
            "[possible values: fmt, clippy, test]",
        ),
        (&["nope"], "nope"),
    ] {
        assert_usage_error(&run(xtask(root).args(args)), needle);
    }
}

#[test]
fn a_closed_stdout_ends_quietly_with_the_commands_own_code() {
    let project = temp_project();
    let root = project.path();
    ok(xtask(root).args(["evidence", "pack", "--out", "dist/b.json"]));
    let quiet = |args: &[&str], code: i32| {
        let o = run_with_closed_stdout(xtask(root).args(args));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
    };
    quiet(&["evidence", "verify", "dist/b.json"], 0);
    quiet(&["evidence", "pack", "--out", "dist/c.json"], 0);
    quiet(&["slo", "snapshot", "--out", "out/s.json"], 0);
    quiet(
        &[
            "gates", "--stage", "stage", "--seed", "1", "--report", "r.json",
        ],
        0,
    );
    std::fs::write(root.join("out/sample.txt"), "changed\n").unwrap();
    // A verdict that does not pass keeps its code, and says why on stderr.
    let o = run_with_closed_stdout(xtask(root).args(["evidence", "verify", "dist/b.json"]));
    assert_one_line_error(&o, "xtask", 2, "does not verify");
}
