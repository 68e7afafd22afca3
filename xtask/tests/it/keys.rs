//! The signing key: it never appears in anything the kit prints or writes,
//! the development key is refused under `--strict`, and a key can come from a
//! file (`MC_SIGNING_KEY_FILE`), but not from a file and the variable at once.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::{run, stderr, stdout, temp_project, xtask};
use xtask::evidence::{Key, DEV_KEY};

/// A key that cannot appear anywhere by chance.
const SECRET: &str = "kEy-S3cret-9f1d4c2b7a-do-not-print";

/// Every byte the kit printed or wrote for `o` and under `root`, as text.
fn everything(root: &Path, outputs: &[Output]) -> String {
    let mut all = String::new();
    for o in outputs {
        all.push_str(&stdout(o));
        all.push_str(&stderr(o));
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "key") {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
            }
        }
    }
    all
}

fn assert_key_absent(all: &str, key: &str) {
    assert!(!all.contains(key), "the key leaked:\n{all}");
    let hex = xtask::util::hex(key.as_bytes());
    assert!(!all.contains(&hex), "the key leaked as hex:\n{all}");
}

fn with_key(root: &Path, key: &str) -> Command {
    let mut cmd = xtask(root);
    cmd.env("MC_SIGNING_KEY", key);
    cmd
}

#[test]
fn the_key_never_appears_in_output_bundles_or_errors() {
    let project = temp_project();
    let root = project.path();
    let mut outs = Vec::new();
    let mut go = |cmd: &mut Command| {
        let o = run(cmd);
        outs.push(o);
    };
    go(with_key(root, SECRET).args(["evidence", "pack", "--out", "dist/b.json"]));
    go(with_key(root, SECRET).args(["evidence", "verify", "dist/b.json"]));
    go(with_key(root, SECRET).args(["evidence", "verify", "--strict", "dist/b.json"]));
    // Error paths: a wrong key, a changed file, a malformed bundle, a missing
    // bundle, a missing directory, bad settings next to the key.
    go(with_key(root, "another-key").args(["evidence", "verify", "dist/b.json"]));
    std::fs::write(root.join("out/sample.txt"), "changed\n").unwrap();
    go(with_key(root, SECRET).args(["evidence", "verify", "dist/b.json"]));
    std::fs::write(root.join("dist/bad.json"), "{\"manifest\": 1}").unwrap();
    go(with_key(root, SECRET).args(["evidence", "verify", "dist/bad.json"]));
    go(with_key(root, SECRET).args(["evidence", "verify", "dist/none.json"]));
    go(with_key(root, SECRET).args(["evidence", "pack", "--dir", "gone", "--out", "dist/c.json"]));
    go(with_key(root, SECRET)
        .env("SOURCE_DATE_EPOCH", "soon")
        .args(["evidence", "pack", "--out", "dist/c.json"]));
    go(with_key(root, SECRET)
        .env("MC_SIGNING_KEY_FILE", root.join("key"))
        .args(["evidence", "pack", "--out", "dist/c.json"]));
    go(xtask(root)
        .env_remove("MC_SIGNING_KEY")
        .env("MC_SIGNING_KEY_FILE", root.join("no-such-key"))
        .args(["evidence", "pack", "--out", "dist/c.json"]));
    assert!(outs[0].status.success() && outs[1].status.success());
    assert!(outs[3..].iter().all(|o| !o.status.success()));
    assert_key_absent(&everything(root, &outs), SECRET);
}

#[test]
fn the_key_file_never_appears_in_output_either() {
    let project = temp_project();
    let root = project.path();
    std::fs::write(root.join("key"), format!("{SECRET}\n")).unwrap();
    let file = |cmd: &mut Command| {
        cmd.env_remove("MC_SIGNING_KEY")
            .env("MC_SIGNING_KEY_FILE", root.join("key"));
        run(cmd)
    };
    let outs = vec![
        file(xtask(root).args(["evidence", "pack", "--strict", "--out", "dist/b.json"])),
        file(xtask(root).args(["evidence", "verify", "--strict", "dist/b.json"])),
        file(xtask(root).args(["evidence", "verify", "dist/missing.json"])),
    ];
    assert!(outs[0].status.success(), "{}", stderr(&outs[0]));
    assert!(outs[1].status.success(), "{}", stdout(&outs[1]));
    assert_key_absent(&everything(root, &outs), SECRET);
}

/// The golive and gates runs of the key tests, good and bad, each made by
/// `with`, which sets the key; returns their outputs.
///
/// Error paths: a failing gate (stopping golive's rollout), a gateway that is
/// down, bad options, a bad clock, a missing input file. golive also writes
/// its summary to `GITHUB_STEP_SUMMARY` (a file under `root`, so checked too).
fn golive_and_gates_runs(root: &Path, with: &dyn Fn() -> Command) -> Vec<Output> {
    let mut outs = Vec::new();
    let summary = root.join("step-summary.md");
    let mut go = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = with();
        cmd.env("CI", "true")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        outs.push(run(&mut cmd));
    };
    let fail = ["--degrade", "GraphQL.reads.p95_ms=+300"];
    go(&["golive", "--seed", "7"], &[]);
    go(&["golive", "--seed", "7", "--strict"], &[]);
    go(
        &[
            "golive",
            "--seed",
            "7",
            "--version",
            "v-fail",
            fail[0],
            fail[1],
        ],
        &[],
    );
    go(
        &["golive", "--version", "v-down"],
        &[("A2A_URL", "http://127.0.0.1:1")],
    );
    go(&["golive", "--stages", "nowhere"], &[]);
    go(&["golive", "--version", "../escape"], &[]);
    go(&["golive", "--checks", "lint"], &[]);
    go(&["golive", "--no-such-option"], &[]);
    go(&["golive"], &[("SOURCE_DATE_EPOCH", "soon")]);
    let gates = ["gates", "--stage", "canary_20", "--report", "out/g.json"];
    go(&gates, &[]);
    go(&[&gates[..], &["--strict", "--seed", "3"]].concat(), &[]);
    go(&[&gates[..], &fail].concat(), &[]);
    go(
        &["gates", "--stage", "moon", "--report", "out/g2.json"],
        &[],
    );
    go(&[&gates[..], &["--slo", "out/missing.json"]].concat(), &[]);
    go(
        &[&gates[..], &["--baseline", "out/sample.txt"]].concat(),
        &[],
    );
    go(&["gates", "--report", "out/g3.json"], &[]);
    outs
}

/// Checks which of the runs of [`golive_and_gates_runs`] succeeded.
fn check_golive_and_gates_codes(outs: &[Output]) {
    let codes: Vec<_> = outs.iter().map(|o| o.status.code()).collect();
    let want = [0, 0, 3, 3, 2, 2, 2, 2, 1, 0, 0, 3, 2, 1, 1, 2].map(Some);
    assert_eq!(
        codes,
        want,
        "{}",
        outs.iter().map(stderr).collect::<Vec<_>>().join("")
    );
}

#[test]
fn the_key_never_appears_in_what_golive_and_gates_write_or_print() {
    let project = temp_project();
    let root = project.path();
    let outs = golive_and_gates_runs(root, &|| with_key(root, SECRET));
    check_golive_and_gates_codes(&outs);
    for rel in [
        "dist/evidence-v0.3.2-mc.json",
        "dist/golive-v-fail.html",
        "out/a2a-decisions-v0.3.2-mc.jsonl",
        "out/gates-stage-v-fail.json",
        "step-summary.md",
    ] {
        assert!(root.join(rel).is_file(), "{rel} is written (and checked)");
    }
    assert_key_absent(&everything(root, &outs), SECRET);
}

#[test]
fn the_key_file_never_appears_in_what_golive_and_gates_write_or_print() {
    let project = temp_project();
    let root = project.path();
    std::fs::write(root.join("key"), format!("{SECRET}\n")).unwrap();
    let file = || {
        let mut cmd = xtask(root);
        cmd.env_remove("MC_SIGNING_KEY")
            .env("MC_SIGNING_KEY_FILE", root.join("key"));
        cmd
    };
    let mut outs = golive_and_gates_runs(root, &file);
    check_golive_and_gates_codes(&outs);
    // The key both in the file and inline is refused, without showing it.
    let o = run(file().env("MC_SIGNING_KEY", SECRET).arg("golive"));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    outs.push(o);
    let bundle = xtask::evidence::read_bundle(root, Path::new("dist/evidence-v0.3.2-mc.json"));
    assert_eq!(
        bundle.unwrap().manifest.signing.key_ref,
        "env:MC_SIGNING_KEY_FILE",
        "signed with the key from the file"
    );
    assert_key_absent(&everything(root, &outs), SECRET);
}

#[test]
fn key_debug_output_hides_the_key() {
    let key = Key::new(SECRET, "env:MC_SIGNING_KEY");
    let shown = format!("{key:?} {key:#?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("env:MC_SIGNING_KEY"), "{shown}");
}

/// `cmd` with no key set at all: the development key is used.
fn no_key(mut cmd: Command) -> Command {
    cmd.env_remove("MC_SIGNING_KEY")
        .env_remove("MC_SIGNING_KEY_FILE");
    cmd
}

#[test]
fn strict_pack_refuses_the_dev_key_and_writes_nothing() {
    let project = temp_project();
    let root = project.path();
    std::fs::write(root.join("dev-key"), format!("{DEV_KEY}\n")).unwrap();
    let mut file = no_key(xtask(root));
    file.env("MC_SIGNING_KEY_FILE", root.join("dev-key"));
    let mut inline = xtask(root);
    inline.env("MC_SIGNING_KEY", DEV_KEY);
    for (how, mut cmd) in [
        ("unset", no_key(xtask(root))),
        ("inline", inline),
        ("file", file),
    ] {
        let o = run(cmd.args(["evidence", "pack", "--strict", "--out", "dist/b.json"]));
        common::assert_one_line_error(
            &o,
            "xtask",
            1,
            "--strict refuses the development signing key",
        );
        assert!(
            !root.join("dist/b.json").exists(),
            "{how}: nothing is written"
        );
    }
    // Without --strict the dev key works, with a warning.
    let o = run(no_key(xtask(root)).args(["evidence", "pack", "--out", "dist/b.json"]));
    assert!(o.status.success());
    assert!(stderr(&o).contains("warning: signing with the development key"));
}

#[test]
fn strict_verify_refuses_the_dev_key() {
    let project = temp_project();
    let root = project.path();
    let o = run(no_key(xtask(root)).args(["evidence", "pack", "--out", "dist/b.json"]));
    assert!(o.status.success());
    let o = run(no_key(xtask(root)).args(["evidence", "verify", "dist/b.json"]));
    assert_eq!(
        o.status.code(),
        Some(0),
        "a dev-key bundle verifies without --strict"
    );
    let o = run(no_key(xtask(root)).args(["evidence", "verify", "--strict", "dist/b.json"]));
    // Exit 1, as pack and golive refuse it (it was 2 before the exit-code table).
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--strict refuses the development signing key"));
    assert!(stdout(&o).is_empty(), "no verdict is printed");
}

#[test]
fn key_file_signs_like_the_same_key_inline() {
    let project = temp_project();
    let root = project.path();
    std::fs::write(root.join("key"), "file-key-42\r\n").unwrap();
    let mut from_file = no_key(xtask(root));
    from_file.env("MC_SIGNING_KEY_FILE", root.join("key"));
    let o = run(from_file.args(["evidence", "pack", "--strict", "--out", "dist/b.json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "no dev-key warning: {}", stderr(&o));
    let bundle = xtask::evidence::read_bundle(root, std::path::Path::new("dist/b.json")).unwrap();
    assert_eq!(bundle.manifest.signing.key_ref, "env:MC_SIGNING_KEY_FILE");

    // One trailing newline (CRLF too) is not part of the key.
    let o =
        run(with_key(root, "file-key-42").args(["evidence", "verify", "--strict", "dist/b.json"]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = run(with_key(root, "file-key-4").args(["evidence", "verify", "dist/b.json"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("\"signature_ok\": false"));
}

#[test]
fn key_file_and_inline_key_together_are_refused() {
    let project = temp_project();
    let root = project.path();
    std::fs::write(root.join("key"), "file-key-42\n").unwrap();
    for args in [
        &["evidence", "pack", "--out", "dist/b.json"][..],
        &["evidence", "verify", "dist/b.json"],
    ] {
        let mut cmd = xtask(root); // sets MC_SIGNING_KEY
        cmd.env("MC_SIGNING_KEY_FILE", root.join("key"));
        let o = run(cmd.args(args));
        common::assert_one_line_error(
            &o,
            "xtask",
            1,
            "both MC_SIGNING_KEY and MC_SIGNING_KEY_FILE are set",
        );
    }
    assert!(!root.join("dist/b.json").exists());
}

#[test]
fn empty_or_unreadable_key_file_is_an_error_naming_the_file() {
    let project = temp_project();
    let root = project.path();
    std::fs::write(root.join("empty-key"), "\n").unwrap();
    let cases = [
        ("empty-key", "the signing key is empty"),
        ("no-such-key", "cannot read the signing key file"),
        ("out", "cannot read the signing key file"), // a directory
    ];
    for (name, want) in cases {
        let mut cmd = no_key(xtask(root));
        cmd.env("MC_SIGNING_KEY_FILE", root.join(name));
        let o = run(cmd.args(["evidence", "pack", "--out", "dist/b.json"]));
        let err = common::assert_one_line_error(&o, "xtask", 1, want);
        if want.starts_with("cannot read") {
            assert!(err.contains(name), "the error names the file: {err}");
        }
    }
}

/// GitHub Actions passes a secret a forked pull request may not see as the
/// empty string: that is the development key with a warning, refused under
/// `--strict`, in every command that signs or verifies.
#[test]
fn empty_key_variables_behave_as_unset() {
    let project = temp_project();
    let root = project.path();
    let empty = |mut cmd: Command| {
        cmd.env("MC_SIGNING_KEY", "").env("MC_SIGNING_KEY_FILE", "");
        cmd
    };
    let o = run(empty(xtask(root)).args(["evidence", "pack", "--out", "dist/b.json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: signing with the development key"),
        "{}",
        stderr(&o)
    );
    // Signed with the development key: it verifies with that key, not another.
    let bundle = xtask::evidence::read_bundle(root, Path::new("dist/b.json")).unwrap();
    assert_eq!(
        bundle.signature,
        xtask::evidence::sign(&bundle.manifest, &Key::new(DEV_KEY, "x"))
    );
    assert_eq!(bundle.manifest.signing.key_ref, "env:MC_SIGNING_KEY");
    let o = run(empty(xtask(root)).args(["evidence", "verify", "dist/b.json"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    for args in [
        &["evidence", "pack", "--strict", "--out", "dist/c.json"][..],
        &["evidence", "verify", "--strict", "dist/b.json"],
        &["golive", "--strict"],
    ] {
        let o = run(empty(xtask(root)).args(args));
        common::assert_one_line_error(
            &o,
            "xtask",
            1,
            "--strict refuses the development signing key",
        );
    }
    assert!(!root.join("dist/c.json").exists());

    // An empty MC_SIGNING_KEY beside a key file is not "both are set".
    std::fs::write(root.join("key"), "file-key").unwrap();
    let mut cmd = xtask(root);
    cmd.env("MC_SIGNING_KEY", "")
        .env("MC_SIGNING_KEY_FILE", root.join("key"));
    let o = run(cmd.args(["evidence", "pack", "--strict", "--out", "dist/d.json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let bundle = xtask::evidence::read_bundle(root, Path::new("dist/d.json")).unwrap();
    assert_eq!(bundle.manifest.signing.key_ref, "env:MC_SIGNING_KEY_FILE");
}

/// The secret forms of the Ed25519 private key in `pem`: the PEM body, and
/// the 32-byte seed as hex and as base64 (standard and URL-safe).
fn ed25519_secrets(pem: &str) -> Vec<String> {
    use base64::Engine;
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem).unwrap();
    let seed = key.to_bytes();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let b64 = |e: &base64::engine::GeneralPurpose| e.encode(seed);
    vec![
        body,
        xtask::util::hex(&seed),
        b64(&base64::engine::general_purpose::STANDARD_NO_PAD),
        b64(&base64::engine::general_purpose::URL_SAFE_NO_PAD),
    ]
}

/// Everything under `root` but the key files themselves (`keys/`), and
/// everything the runs printed.
fn everything_but_keys(root: &Path, outputs: &[Output]) -> String {
    let mut all: String = outputs.iter().map(|o| stdout(o) + &stderr(o)).collect();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p == root.join("keys") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
            }
        }
    }
    all
}

#[test]
fn the_ed25519_private_key_never_appears_in_output_envelopes_or_errors() {
    let project = temp_project();
    let root = project.path();
    let key = common::ed25519_key(root, "test");
    let pem = std::fs::read_to_string(&key).unwrap();
    let signing = || {
        let mut cmd = xtask(root);
        cmd.env_remove("MC_SIGNING_KEY")
            .env("MC_SIGNING_KEY_FILE", &key);
        cmd
    };
    let mut outs = Vec::new();
    let mut go = |cmd: &mut Command| outs.push(run(cmd));
    let dsse = common::PACK_DSSE;
    go(signing().args(dsse));
    go(signing().args([
        "evidence",
        "verify",
        "--key",
        "keys/test.pem.pub",
        "dist/e.json",
    ]));
    // Error paths: the private key given where the public key goes, the key
    // for a bundle, a bundle verified with it, a key file others can read
    // under --strict, a corrupted copy of it, golive passing and failing.
    go(signing().args([
        "evidence",
        "verify",
        "--key",
        "keys/test.pem",
        "dist/e.json",
    ]));
    go(signing()
        .env("MC_VERIFY_KEY_FILE", &key)
        .args(["evidence", "verify", "dist/e.json"]));
    go(signing().args(["evidence", "pack", "--out", "dist/b.json"]));
    go(xtask(root).args(["evidence", "pack", "--out", "dist/b.json"]));
    go(signing().args(["evidence", "verify", "dist/b.json"]));
    let garbled = root.join("keys/garbled.pem");
    std::fs::write(&garbled, pem.replacen("MC4CAQAw", "MC4CAQEw", 1)).unwrap();
    go(signing().env("MC_SIGNING_KEY_FILE", &garbled).args(dsse));
    let cut = root.join("keys/cut.pem");
    std::fs::write(&cut, &pem[..pem.len() - 40]).unwrap();
    go(signing().env("MC_SIGNING_KEY_FILE", &cut).args(dsse));
    go(signing().args(["golive", "--seed", "7"]));
    go(signing().args([
        "golive",
        "--seed",
        "7",
        "--version",
        "v-fail",
        "--degrade",
        "bad-release",
    ]));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        go(signing().args(["golive", "--strict"]));
        go(signing().args(dsse));
    }
    let codes: Vec<_> = outs.iter().map(|o| o.status.code()).collect();
    let mut want = vec![0, 0, 2, 2, 1, 0, 1, 1, 1, 0, 3];
    if cfg!(unix) {
        want.extend([1, 0]);
    }
    assert_eq!(
        codes,
        want.into_iter().map(Some).collect::<Vec<_>>(),
        "{}",
        outs.iter().map(stderr).collect::<Vec<_>>().join("")
    );
    for rel in [
        "dist/e.json",
        "dist/golive-v0.3.2-mc.intoto.json",
        "dist/golive-v-fail.intoto.json",
    ] {
        assert!(root.join(rel).is_file(), "{rel} is written (and checked)");
    }
    let all = everything_but_keys(root, &outs);
    for secret in ed25519_secrets(&pem) {
        assert!(
            !all.contains(&secret),
            "the private key leaked ({secret:.8}…):\n{all}"
        );
    }
}

#[test]
fn keygen_prints_the_key_id_never_the_key() {
    let project = temp_project();
    let root = project.path();
    let o = run(xtask(root).args(["evidence", "keygen", "--out", "keys/new.pem"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let again = run(xtask(root).args(["evidence", "keygen", "--out", "keys/new.pem"]));
    assert_eq!(again.status.code(), Some(2));
    let pem = std::fs::read_to_string(root.join("keys/new.pem")).unwrap();
    let all = everything_but_keys(root, &[o, again]);
    for secret in ed25519_secrets(&pem) {
        assert!(!all.contains(&secret), "the private key leaked:\n{all}");
    }
}

#[test]
fn ed25519_key_debug_output_hides_the_key() {
    let pem =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ed25519-test.pem"))
            .unwrap();
    let key = xtask::attest::keys::Ed25519Key::from_pem(&pem, "env:MC_SIGNING_KEY_FILE").unwrap();
    let shown = format!("{key:?} {key:#?}");
    for secret in ed25519_secrets(std::str::from_utf8(&pem).unwrap()) {
        assert!(!shown.contains(&secret), "{shown}");
    }
    assert!(shown.contains(key.keyid()), "{shown}");
}
