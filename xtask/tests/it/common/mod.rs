//! Helpers shared by the integration tests: run the real binaries hermetically
//! in a temporary project, and keep insta's snapshots in the top-level
//! `snapshots/` folder.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The signing key [`hermetic`] sets (`MC_SIGNING_KEY`).
pub const TEST_KEY: &str = "test-key-0123456789";

/// A temporary project: an empty root with `out/sample.txt`, as in the seed.
pub fn temp_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    std::fs::write(dir.path().join("out/sample.txt"), "hello evidence\n").unwrap();
    dir
}

/// `cargo xtask` (the built binary) with `root` as its project root.
///
/// The xtask finds its root from `CARGO_MANIFEST_DIR`, as cargo sets it for
/// `cargo run`; pointing it at `<root>/xtask` makes `root` the project.
pub fn xtask(root: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    hermetic(&mut cmd);
    cmd.env("CARGO_MANIFEST_DIR", root.join("xtask"))
        .current_dir(root);
    cmd
}

/// Clears the variables the kit reads, so the caller's environment cannot leak
/// into a test, and fixes the clock and the key.
pub fn hermetic(cmd: &mut Command) {
    for var in [
        "MC_SIGNING_KEY",
        "MC_SIGNING_KEY_FILE",
        "MC_VERIFY_KEY_FILE",
        "MC_VERSION",
        "MC_SEED",
        "A2A_URL",
        "SOURCE_DATE_EPOCH",
        "GITHUB_STEP_SUMMARY",
        "PROMETHEUS_URL",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_BACKTRACE", "0")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("MC_SIGNING_KEY", TEST_KEY);
}

/// Runs `cmd` and returns its output; panics with the output if it could not start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The top-level `snapshots/` folder.
pub fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../snapshots")
}

/// insta settings every test uses: snapshots in `snapshots/`, named without the
/// module prefix.
pub fn insta_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(snapshot_dir());
    s.set_prepend_module_to_snapshot(false);
    s
}

/// Runs `cmd`, killing it if it has not ended within `limit` (a hang is a
/// test failure, not a stuck test run).
pub fn run_within(cmd: &mut Command, limit: std::time::Duration) -> Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let start = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            child.kill().ok();
            let o = child.wait_with_output().expect("wait");
            panic!("{cmd:?} hung for {limit:?}; stderr:\n{}", stderr(&o));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.wait_with_output().expect("wait")
}

/// Whether the tests run in CI (`CI=true`), where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Says on stderr that a test is skipped because the machine lacks `why`,
/// and returns; under `CI=true` it panics instead, since CI installs (and
/// must run) everything the tests need. A test that skips calls this, then
/// returns.
#[track_caller]
pub fn skip(why: &str) {
    assert!(!in_ci(), "under CI=true nothing is skipped: {why}");
    eprintln!("skipped: {why}");
}

/// Whether the tests run as root (where permission bits do not stop reads).
#[cfg(unix)]
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // A file we create is owned by our effective user.
    let f = tempfile::NamedTempFile::new().expect("temp file");
    f.as_file().metadata().expect("stat").uid() == 0
}

/// Every file `golive` writes for `version` when all four stages run.
pub fn golive_outputs(version: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        format!("out/build-{version}.json"),
        format!("out/a2a-probe-{version}.json"),
        format!("out/a2a-decisions-{version}.jsonl"),
        format!("out/slo-{version}-a2a-measured.json"),
        format!("out/slo-{version}-baseline.json"),
        format!("dist/evidence-{version}.json"),
        format!("dist/golive-{version}.md"),
        format!("dist/golive-{version}.html"),
    ]
    .into();
    for stage in ["stage", "canary_20", "canary_50", "production"] {
        v.push(format!("out/gates-{stage}-{version}.json"));
    }
    v
}

/// Asserts that `o` ended with exit `code` and said why in one line on stderr:
/// exactly one line `<prog>: ...` that is not a warning, containing `needle`;
/// no panic and no backtrace. The only other lines allowed are warnings
/// (`<prog>: warning: ...`) and golive's progress (`golive: ...`). Returns
/// the error line. Every test of a failure the user can cause goes through here.
#[track_caller]
pub fn assert_one_line_error(o: &Output, prog: &str, code: i32, needle: &str) -> String {
    let (line, others) = error_line(o, prog, code, needle);
    assert!(others.is_empty(), "nothing else on stderr: {others:?}");
    line
}

/// [`assert_one_line_error`] for a command whose children print to stderr
/// too (`golive --checks` runs cargo): other lines are allowed.
#[track_caller]
pub fn assert_error_line_among_others(o: &Output, prog: &str, code: i32, needle: &str) -> String {
    error_line(o, prog, code, needle).0
}

#[track_caller]
fn error_line(o: &Output, prog: &str, code: i32, needle: &str) -> (String, Vec<String>) {
    let (out, err) = (stdout(o), stderr(o));
    let ctx = format!("status {:?}\nstdout:\n{out}\nstderr:\n{err}", o.status);
    assert_eq!(o.status.code(), Some(code), "exit code: {ctx}");
    assert!(
        !err.contains("panicked") && !err.contains("stack backtrace"),
        "no panic: {ctx}"
    );
    let prefix = format!("{prog}: ");
    let warning = format!("{prog}: warning: ");
    let (errors, others): (Vec<&str>, Vec<&str>) = err
        .lines()
        .filter(|l| !l.starts_with(&warning) && !l.starts_with("golive: "))
        .partition(|l| l.starts_with(&prefix));
    assert_eq!(errors.len(), 1, "one error line: {ctx}");
    assert!(errors[0].contains(needle), "expected {needle:?}: {ctx}");
    let others = others.into_iter().map(str::to_string).collect();
    (errors[0].to_string(), others)
}

/// Asserts that `o` is clap's usage error: exit 2, `error:` and a pointer to
/// the usage or the help on stderr, nothing on stdout.
#[track_caller]
pub fn assert_usage_error(o: &Output, needle: &str) {
    let err = stderr(o);
    let ctx = format!("status {:?}\nstderr:\n{err}", o.status);
    assert_eq!(o.status.code(), Some(2), "{ctx}");
    assert!(
        err.starts_with("error: ") && (err.contains("Usage:") || err.contains("--help")),
        "{ctx}"
    );
    assert!(err.contains(needle), "expected {needle:?}: {ctx}");
    assert!(stdout(o).is_empty(), "{ctx}");
}

/// Runs `cmd` with its stdout a pipe whose reading end is already closed
/// (`cmd | head -0`), so its first write to stdout fails with EPIPE.
pub fn run_with_closed_stdout(cmd: &mut Command) -> Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let child = cmd
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    // The command above still holds the writing end; the child has its own.
    child.wait_with_output().expect("wait")
}

/// The tests' fixed Ed25519 key pair (`tests/data/ed25519-<name>.pem` and
/// `.pem.pub`), copied into `root/keys/` with the private key at mode 0600 (git
/// does not keep modes); returns the private key's path.
pub fn ed25519_key(root: &Path, name: &str) -> PathBuf {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let keys = root.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let private = keys.join(format!("{name}.pem"));
    for suffix in ["", ".pub"] {
        std::fs::copy(
            data.join(format!("ed25519-{name}.pem{suffix}")),
            keys.join(format!("{name}.pem{suffix}")),
        )
        .unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    private
}

/// A generated corpus of bad inputs (`xtask/tests/data/<name>/`): with
/// `MC_BLESS_CORPUS` set, writes `files` there; otherwise checks that the
/// files on disk are exactly `files`, and nothing else. `module` is the test
/// module that generates it, named in the fix.
pub fn bless_or_check_corpus(dir: &Path, files: &[(&str, &[u8])], module: &str) {
    if std::env::var_os("MC_BLESS_CORPUS").is_some() {
        if dir.exists() {
            std::fs::remove_dir_all(dir).unwrap();
        }
        std::fs::create_dir_all(dir).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        return;
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    let mut names: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    let fix =
        format!("run `MC_BLESS_CORPUS=1 cargo test -p xtask --test it {module}::` and commit");
    assert_eq!(
        on_disk, names,
        "the corpus files differ from the generator; {fix}"
    );
    for (name, bytes) in files {
        let disk = std::fs::read(dir.join(name)).unwrap();
        assert!(disk == *bytes, "{name} differs from the generator; {fix}");
    }
}

/// Every reason a `verify` verdict gives: its `reasons`, then each rejected
/// path's `reason`.
pub fn verdict_reasons(v: &serde_json::Value) -> Vec<&str> {
    let reasons = v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap());
    let rejected = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap());
    reasons.chain(rejected).collect()
}

/// `evidence pack --format dsse --out dist/e.json`.
pub const PACK_DSSE: [&str; 6] = [
    "evidence",
    "pack",
    "--format",
    "dsse",
    "--out",
    "dist/e.json",
];

/// `xtask` in `root`, signing with the Ed25519 private key file `key` (and
/// no HMAC key).
pub fn signing_with(root: &Path, key: &Path) -> Command {
    let mut cmd = xtask(root);
    cmd.env_remove("MC_SIGNING_KEY")
        .env("MC_SIGNING_KEY_FILE", key);
    cmd
}

/// A loopback port that is free now and that no `bind(0)` of another test
/// will take before the caller binds it: one below the kernel's ephemeral
/// range, where the system never assigns ports by itself (the tests run four
/// at a time, and most servers bind port 0). Falls back to a port the kernel
/// chooses when the range cannot be read. Never Prometheus' default 9090.
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .filter(|&low| low > 20_000);
    if let Some(low) = low {
        // Spread over 10,000 ports by process and call, so that two test
        // runs at once do not walk the same ports.
        let span = 10_000;
        let start = std::process::id() % span;
        for _ in 0..span {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let port = (low - span + (start + n * 7) % span) as u16;
            if port != 9090 && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = l.local_addr().unwrap().port();
        if port != 9090 {
            return port;
        }
    }
}
