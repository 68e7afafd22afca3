//! Another Rust workspace adds its own `xtask` that calls this library, as the
//! README shows: its `cargo xtask golive` works, and its snapshot test of the
//! gate reports fails when an objective changes. These build a real workspace
//! with cargo. Its intermediate artifacts go to this build's own target
//! directory (cargo's `build-dir`), so the dependency versions it shares with
//! this workspace (`Cargo.lock` is copied) are compiled once: a cold
//! `cargo test --workspace` compiled all of them twice (about 100 s of CPU).
//! Its final binaries go to a target directory of their own: its binary is
//! called `xtask` too, and would replace this workspace's.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

/// Writes `text` to `root/rel`, creating its directory.
fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// An adopting workspace at `root`: an `xtask` crate whose main is the
/// README's, depending on this kit (and on `dev_deps`).
fn adopting_workspace(root: &Path, dev_deps: &str) {
    let kit = Path::new(env!("CARGO_MANIFEST_DIR"));
    let write = |rel: &str, text: &str| write(root, rel, text);
    write(
        "Cargo.toml",
        // As the README recommends: dependencies without debug info.
        "[workspace]\nmembers = [\"xtask\"]\nresolver = \"2\"\n\n\
         [profile.dev.package.\"*\"]\ndebug = false\n",
    );
    write(
        ".cargo/config.toml",
        "[alias]\nxtask = \"run --bin xtask --\"\n",
    );
    write(
        "xtask/Cargo.toml",
        &format!(
            "[package]\nname = \"xtask\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nmc-kit = {{ package = \"xtask\", path = {:?} }}\n\n\
             [dev-dependencies]\n{dev_deps}\n",
            kit.to_str().unwrap()
        ),
    );
    write(
        "xtask/src/main.rs",
        "use std::path::Path;\nuse std::process::ExitCode;\n\n\
         fn main() -> ExitCode {\n    \
         let root = Path::new(env!(\"CARGO_MANIFEST_DIR\")).parent().unwrap();\n    \
         mc_kit::xtask_main(root)\n}\n",
    );
    write("out/release-notes.txt", "their own artifact\n");
    // The same dependency versions as this workspace, so nothing new is fetched.
    std::fs::copy(kit.join("../Cargo.lock"), root.join("Cargo.lock")).unwrap();
}

/// `cargo ARGS` in the workspace at `root`, hermetic, with this build's
/// build directory and a target directory of its own.
fn cargo(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO"));
    common::hermetic(&mut cmd);
    for var in [
        "CARGO_MANIFEST_DIR",
        "CARGO_PKG_NAME",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_BUILD_DIR",
        "RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let build_dir = tmp
        .parent()
        .expect("the tmpdir is inside the target directory");
    cmd.current_dir(root)
        .env("CARGO_BUILD_BUILD_DIR", build_dir)
        .env("CARGO_TARGET_DIR", tmp.join("other-repo-target"))
        .env("CARGO_TERM_COLOR", "never")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// One adopting workspace for both checks, run one after the other: two
/// workspaces sharing the target directory would each build a binary called
/// `xtask` with its own root compiled in, and a test could run the other's.
#[test]
fn an_adopting_workspace_runs_golive_and_reviews_its_gate_reports() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path();
    adopting_workspace(
        root,
        r#"insta = { version = "1.49.0", features = ["yaml"] }"#,
    );
    runs_golive_through_its_own_xtask(root);
    snapshot_test_fails_on_a_changed_objective_and_shows_the_change(root);
}

fn runs_golive_through_its_own_xtask(root: &Path) {
    let o = cargo(root, &["xtask", "golive", "--seed", "1"], &[]);
    let (out, err) = (common::stdout(&o), common::stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("result: PASS (exit 0)"), "{out}");
    let bundle = std::fs::read_to_string(root.join("dist/evidence-v0.3.2-mc.json")).unwrap();
    assert!(
        bundle.contains("\"out/release-notes.txt\""),
        "their artifacts are packed"
    );
    assert!(root.join("dist/golive-v0.3.2-mc.html").is_file());

    // This repository's own `bench` is not offered to them.
    let o = cargo(root, &["xtask", "--help"], &[]);
    let help = common::stdout(&o);
    assert!(o.status.success() && help.contains("golive"), "{help}");
    assert!(!help.contains("bench"), "{help}");
}

/// The README's adoption example: a one-line insta test of the gate reports.
const SNAPSHOT_TEST: &str = r#"
#[test]
fn gate_reports() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    insta::assert_yaml_snapshot!(mc_kit::rehearse::rehearse(root, &Default::default()).unwrap());
}
"#;

fn snapshot_test_fails_on_a_changed_objective_and_shows_the_change(root: &Path) {
    write(root, "xtask/tests/gates.rs", SNAPSHOT_TEST);
    write(
        root,
        "golive.toml",
        "[objectives.canary_20]\n\"GraphQL.reads.p95_ms\" = { max = 380, warn = 420 }\n",
    );
    // `xtask@0.1.0`: the kit's package is also called xtask.
    let test = ["test", "-p", "xtask@0.1.0", "--test", "gates"];
    let snap = root.join("xtask/tests/snapshots/gates__gate_reports.snap");
    let new = snap.with_extension("snap.new");
    let insta = |update: &str| {
        let o = cargo(root, &test, &[("INSTA_UPDATE", update), ("CI", "")]);
        (
            o.status.success(),
            format!("{}\n{}", common::stdout(&o), common::stderr(&o)),
        )
    };

    // The team accepts its first snapshot (what `cargo insta accept` does)...
    let (ok, log) = insta("always");
    assert!(ok, "{log}");
    let accepted = std::fs::read_to_string(&snap).unwrap();
    assert!(accepted.contains("threshold: 380"), "{accepted}");
    // ... which holds on the next run: the rehearsal is deterministic.
    let (ok, log) = insta("no");
    assert!(ok, "{log}");

    // A tighter objective fails the test and leaves the change for review.
    write(
        root,
        "golive.toml",
        "[objectives.canary_20]\n\"GraphQL.reads.p95_ms\" = { max = 340, warn = 420 }\n",
    );
    let (ok, log) = insta("new");
    assert!(
        !ok,
        "a changed objective must fail the snapshot test: {log}"
    );
    let proposed = std::fs::read_to_string(&new).unwrap();
    assert!(proposed.contains("threshold: 340"), "{proposed}");
    assert!(!proposed.contains("threshold: 380"), "{proposed}");
    assert_eq!(
        std::fs::read_to_string(&snap).unwrap(),
        accepted,
        "the accepted snapshot is kept"
    );
}
