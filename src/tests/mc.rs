//! The drop-in `mc` binary runs the seed Quickstart's exact command lines in
//! its current directory. (These tests live under `src/tests/` because the
//! repository's top-level folders are fixed by the design.)

use std::path::Path;
use std::process::{Command, Output};

fn mc(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mc"));
    for var in [
        "MC_SIGNING_KEY",
        "MC_SIGNING_KEY_FILE",
        "MC_VERIFY_KEY_FILE",
        "MC_VERSION",
        "MC_SEED",
        "SOURCE_DATE_EPOCH",
        "PROMETHEUS_URL",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("MC_SIGNING_KEY", "dev-demo-key")
        .env("MC_VERSION", "v0.3.2-mc")
        .env("RUST_BACKTRACE", "0")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("mc runs")
}

fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    std::fs::write(dir.path().join("out/sample.txt"), "hello evidence\n").unwrap();
    dir
}

#[test]
fn quickstart_evidence_steps_work_in_the_current_directory() {
    let dir = scratch();
    let o = mc(
        dir.path(),
        &["evidence", "pack", "--out", "dist/evidence-v0.3.2-mc.json"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout)
        .starts_with("wrote evidence bundle → dist/evidence-v0.3.2-mc.json"));
    let o = mc(
        dir.path(),
        &["evidence", "verify", "dist/evidence-v0.3.2-mc.json"],
    );
    assert_eq!(o.status.code(), Some(0));
    let verdict: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(verdict["ok"], true);

    std::fs::write(dir.path().join("out/sample.txt"), "changed\n").unwrap();
    let o = mc(
        dir.path(),
        &["evidence", "verify", "dist/evidence-v0.3.2-mc.json"],
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn gates_export_works_in_the_current_directory() {
    let dir = scratch();
    std::fs::write(
        dir.path().join("golive.toml"),
        "[prometheus]\nurl = \"http://prometheus:9090\"\n",
    )
    .unwrap();
    let o = mc(dir.path(), &["gates", "export", "--format", "flagger"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("kind: \"Canary\""), "{text}");
    let o = mc(dir.path(), &["gates", "export", "--format", "spinnaker"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn bad_command_lines_exit_2_with_usage() {
    let dir = scratch();
    for args in [
        &["evidence"][..],
        &["evidence", "pack"],
        &["nope"],
        &["evidence", "verify"],
    ] {
        let o = mc(dir.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Usage:"),
            "{args:?}"
        );
    }
    let o = mc(dir.path(), &["--help"]);
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("evidence") && help.contains("slo") && help.contains("Exit codes"));
}

#[test]
fn missing_bundle_is_a_one_line_error() {
    let dir = scratch();
    let o = mc(dir.path(), &["evidence", "verify", "dist/nope.json"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("mc: cannot read dist/nope.json: "), "{err}");
}

/// `mc evidence verify b.json | head -1`: the reader goes away, `mc` ends
/// quietly with the verdict's code rather than a panic about a broken pipe.
#[test]
fn verify_into_a_closed_pipe_ends_quietly() {
    let dir = scratch();
    let o = mc(dir.path(), &["evidence", "pack", "--out", "dist/b.json"]);
    assert!(o.status.success());
    for (changed, code) in [(false, 0), (true, 2)] {
        if changed {
            std::fs::write(dir.path().join("out/sample.txt"), "changed\n").unwrap();
        }
        // The reading end is closed before mc starts: its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(env!("CARGO_BIN_EXE_mc"))
            .env("MC_SIGNING_KEY", "dev-demo-key")
            .env("RUST_BACKTRACE", "0")
            .current_dir(dir.path())
            .args(["evidence", "verify", "dist/b.json"])
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{err}");
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{err}"
        );
        assert!(o.stdout.is_empty(), "stdout went to the closed pipe");
    }
}

#[test]
fn slo_snapshot_from_prometheus_has_the_same_command_line() {
    let dir = scratch();
    // A port nothing listens on: the error names the metric and writes nothing.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let o = mc(
        dir.path(),
        &[
            "slo",
            "snapshot",
            "--prometheus",
            &url,
            "--out",
            "out/slo.json",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("mc: metric A2A.perform.p95_ms: cannot reach Prometheus at"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!dir.path().join("out/slo.json").exists());

    let o = mc(
        dir.path(),
        &[
            "slo",
            "snapshot",
            "--prometheus",
            &url,
            "--at",
            "yesterday",
            "--out",
            "out/slo.json",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--at \"yesterday\": expected RFC 3339"),
        "{err}"
    );
}

#[test]
fn keygen_pack_dsse_and_verify_with_the_key_in_the_current_directory() {
    let dir = scratch();
    let o = mc(dir.path(), &["evidence", "keygen", "--out", "release.pem"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed = String::from_utf8_lossy(&o.stdout).into_owned();
    let keyid = printed
        .lines()
        .find_map(|l| l.strip_prefix("key id: "))
        .expect("the key id is printed");
    assert_eq!(keyid.len(), 64, "{printed}");
    let mut pack = Command::new(env!("CARGO_BIN_EXE_mc"));
    let o = pack
        .env_remove("MC_SIGNING_KEY")
        .env("MC_SIGNING_KEY_FILE", "release.pem")
        .env("RUST_BACKTRACE", "0")
        .current_dir(dir.path())
        .args([
            "evidence",
            "pack",
            "--format",
            "dsse",
            "--out",
            "dist/e.json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let envelope = std::fs::read_to_string(dir.path().join("dist/e.json")).unwrap();
    assert!(
        envelope.contains(keyid),
        "signed with the new key: {envelope}"
    );
    let o = mc(
        dir.path(),
        &[
            "evidence",
            "verify",
            "--key",
            "release.pem.pub",
            "dist/e.json",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = mc(dir.path(), &["evidence", "verify", "dist/e.json"]);
    assert_eq!(o.status.code(), Some(2), "never ok without the public key");
}
