//! `cargo xtask evidence pack|verify` end to end: the real binary in a
//! temporary project, with a fixed key and SOURCE_DATE_EPOCH.

use crate::common;

use std::path::Path;

use common::*;
use serde_json::Value;
use xtask::evidence::{self, Artifact, Key, Manifest, Signing};

const BUNDLE: &str = "dist/evidence-v0.3.2-mc.json";

fn pack(root: &Path) {
    let o = run(xtask(root).args(["evidence", "pack", "--out", BUNDLE]));
    assert!(o.status.success(), "pack failed: {}", stderr(&o));
}

/// Runs verify; returns (exit code, parsed JSON verdict).
fn verify(root: &Path, extra: &[&str]) -> (i32, Value) {
    let o = run(xtask(root).args(["evidence", "verify", BUNDLE]).args(extra));
    let code = o.status.code().expect("exited");
    let json = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("verify printed no JSON ({e}): {}", stderr(&o)));
    (code, json)
}

fn read_bundle(root: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root.join(BUNDLE)).unwrap()).unwrap()
}

fn write_bundle(root: &Path, v: &Value) {
    std::fs::write(root.join(BUNDLE), serde_json::to_string_pretty(v).unwrap()).unwrap();
}

#[test]
fn pack_then_verify_is_ok_and_reproducible() {
    let p = temp_project();
    std::fs::create_dir_all(p.path().join("out/nested/deeper")).unwrap();
    std::fs::write(p.path().join("out/nested/deeper/b.bin"), [0u8, 1, 2, 255]).unwrap();
    std::fs::write(p.path().join("out/a.json"), "{}\n").unwrap();
    pack(p.path());
    let first = std::fs::read(p.path().join(BUNDLE)).unwrap();
    insta_settings()
        .bind(|| insta::assert_snapshot!("evidence_bundle", String::from_utf8_lossy(&first)));
    let (code, verdict) = verify(p.path(), &[]);
    assert_eq!(code, 0);
    insta_settings().bind(|| insta::assert_json_snapshot!("evidence_verify_ok", verdict));

    // Same inputs, key and epoch: a byte-identical bundle.
    pack(p.path());
    assert_eq!(first, std::fs::read(p.path().join(BUNDLE)).unwrap());
}

#[test]
fn tampered_file_is_a_mismatch() {
    let p = temp_project();
    pack(p.path());
    std::fs::write(p.path().join("out/sample.txt"), "hello evidencf\n").unwrap();
    let (code, verdict) = verify(p.path(), &[]);
    assert_eq!(code, 2);
    insta_settings().bind(|| insta::assert_json_snapshot!("evidence_verify_mismatch", verdict));
}

#[test]
fn deleted_file_is_missing() {
    let p = temp_project();
    pack(p.path());
    std::fs::remove_file(p.path().join("out/sample.txt")).unwrap();
    let (code, verdict) = verify(p.path(), &[]);
    assert_eq!(code, 2);
    insta_settings().bind(|| insta::assert_json_snapshot!("evidence_verify_missing", verdict));
}

#[test]
fn added_file_is_extra() {
    let p = temp_project();
    pack(p.path());
    std::fs::write(p.path().join("out/new.txt"), "slipped in\n").unwrap();
    let (code, verdict) = verify(p.path(), &[]);
    assert_eq!(code, 2);
    insta_settings().bind(|| insta::assert_json_snapshot!("evidence_verify_extra", verdict));
}

#[test]
fn edited_signature_fails() {
    let p = temp_project();
    pack(p.path());
    let mut b = read_bundle(p.path());
    let sig = b["signature"].as_str().unwrap();
    let flipped = if sig.starts_with('0') { "1" } else { "0" }.to_string() + &sig[1..];
    b["signature"] = flipped.into();
    write_bundle(p.path(), &b);
    let (code, verdict) = verify(p.path(), &[]);
    assert_eq!(code, 2);
    assert_eq!(verdict["signature_ok"], false);
    insta_settings()
        .bind(|| insta::assert_json_snapshot!("evidence_verify_bad_signature", verdict));
}

#[test]
fn edited_manifest_value_fails() {
    let p = temp_project();
    pack(p.path());
    for (field, value) in [
        ("version", Value::from("v9.9.9")),
        ("ts", Value::from(1_700_000_001u64)),
    ] {
        let mut b = read_bundle(p.path());
        b["manifest"][field] = value;
        write_bundle(p.path(), &b);
        let (code, verdict) = verify(p.path(), &[]);
        assert_eq!(
            (code, &verdict["signature_ok"]),
            (2, &Value::from(false)),
            "{field}"
        );
        pack(p.path());
    }
    let mut b = read_bundle(p.path());
    b["manifest"]["artifacts"][0]["size"] = 16.into();
    write_bundle(p.path(), &b);
    assert_eq!(verify(p.path(), &[]).1["signature_ok"], false);
}

#[test]
fn reindented_and_reordered_bundle_still_verifies() {
    let p = temp_project();
    pack(p.path());
    let text = std::fs::read_to_string(p.path().join(BUNDLE)).unwrap();
    // Compact, and with the top-level keys in the other order.
    let b: Value = serde_json::from_str(&text).unwrap();
    let reordered = format!(
        "{{\"signature\":{},\n\n   \"manifest\":{}}}",
        b["signature"],
        serde_json::to_string(&b["manifest"]).unwrap()
    );
    std::fs::write(p.path().join(BUNDLE), reordered).unwrap();
    let (code, verdict) = verify(p.path(), &[]);
    assert_eq!((code, &verdict["ok"]), (0, &Value::from(true)));
}

#[test]
fn wrong_key_fails() {
    let p = temp_project();
    pack(p.path());
    let o = run(xtask(p.path())
        .args(["evidence", "verify", BUNDLE])
        .env("MC_SIGNING_KEY", "another-key"));
    assert_eq!(o.status.code(), Some(2));
}

/// A bundle made by the seed's Python kit (`tools/mc.py evidence pack` with
/// MC_SIGNING_KEY=test-key-0123456789 over the seed's `out/sample.txt`).
#[test]
fn seed_made_bundle_verifies_flagged_weak_and_strict_rejects_it() {
    let p = temp_project();
    std::fs::create_dir_all(p.path().join("dist")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seed-bundle.json"),
        p.path().join(BUNDLE),
    )
    .unwrap();
    let (code, verdict) = verify(p.path(), &[]);
    assert_eq!(code, 0);
    assert_eq!(verdict["weak_signature"], true);
    insta_settings().bind(|| insta::assert_json_snapshot!("evidence_verify_seed_bundle", verdict));
    let (code, verdict) = verify(p.path(), &["--strict"]);
    assert_eq!((code, &verdict["ok"]), (2, &Value::from(false)));
    // The seed's weak signature also breaks when the manifest changes.
    let mut b = read_bundle(p.path());
    b["manifest"]["version"] = "v0.3.3-mc".into();
    write_bundle(p.path(), &b);
    assert_eq!(verify(p.path(), &[]).1["signature_ok"], false);
}

/// Signed bundles whose paths try to leave the project: each path is
/// rejected with its reason, and nothing outside is read.
#[test]
fn path_escapes_are_rejected() {
    let p = temp_project();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "s3cret").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), p.path().join("out/link")).unwrap();
    std::os::unix::fs::symlink(outside.path(), p.path().join("out/linkdir")).unwrap();
    let secret_path = outside.path().join("secret").to_str().unwrap().to_string();
    let sha = "0".repeat(64);
    let key = Key::new("test-key-0123456789", "env:MC_SIGNING_KEY");
    for path in [
        secret_path.as_str(),
        "out/../../etc/passwd",
        "Cargo.toml",
        "out/link",
        "out/linkdir/secret",
    ] {
        let manifest = Manifest {
            artifacts: vec![Artifact {
                path: path.to_string(),
                sha256: sha.clone(),
                size: Some(6),
            }],
            dir: Some("out".into()),
            signing: Signing {
                algo: evidence::ALGO_HMAC.into(),
                key_ref: "env:MC_SIGNING_KEY".into(),
            },
            ts: 1_700_000_000,
            version: "v0.3.2-mc".into(),
        };
        let signature = evidence::sign(&manifest, &key);
        let bundle = evidence::Bundle {
            manifest,
            signature,
        };
        std::fs::create_dir_all(p.path().join("dist")).unwrap();
        write_bundle(p.path(), &serde_json::to_value(&bundle).unwrap());
        let (code, verdict) = verify(p.path(), &[]);
        assert_eq!(code, 2, "{path}");
        assert_eq!(verdict["signature_ok"], true, "{path}: signed for real");
        assert_eq!(verdict["rejected"][0]["path"], path, "{path}: {verdict}");
        assert!(
            verdict["mismatch"].as_array().unwrap().is_empty(),
            "{path} was read"
        );
    }
}

#[test]
fn bundle_inside_packed_dir_is_not_listed() {
    let p = temp_project();
    let o = run(xtask(p.path()).args(["evidence", "pack", "--out", "out/bundle.json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let b: Value =
        serde_json::from_str(&std::fs::read_to_string(p.path().join("out/bundle.json")).unwrap())
            .unwrap();
    let paths: Vec<&str> = b["manifest"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["out/sample.txt"]);
    let o = run(xtask(p.path()).args(["evidence", "verify", "out/bundle.json"]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn pack_dir_option_packs_another_directory() {
    let p = temp_project();
    std::fs::create_dir_all(p.path().join("reports")).unwrap();
    std::fs::write(p.path().join("reports/r.txt"), "r\n").unwrap();
    let o = run(xtask(p.path()).args(["evidence", "pack", "--dir", "reports", "--out", BUNDLE]));
    assert!(o.status.success(), "{}", stderr(&o));
    let b = read_bundle(p.path());
    assert_eq!(b["manifest"]["dir"], "reports");
    assert_eq!(b["manifest"]["artifacts"][0]["path"], "reports/r.txt");
    assert_eq!(verify(p.path(), &[]).0, 0);
    let o = run(xtask(p.path()).args(["evidence", "pack", "--dir", "../x", "--out", BUNDLE]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("xtask: --dir ../x"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn dev_key_warns_and_strict_refuses_it() {
    let p = temp_project();
    let o = run(xtask(p.path())
        .args(["evidence", "pack", "--out", BUNDLE])
        .env_remove("MC_SIGNING_KEY"));
    assert!(o.status.success());
    assert!(stderr(&o).contains("warning: signing with the development key"));
    let o = run(xtask(p.path())
        .args(["evidence", "pack", "--strict", "--out", BUNDLE])
        .env_remove("MC_SIGNING_KEY"));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--strict refuses the development signing key"));
}

#[test]
fn malformed_bundle_is_a_one_line_error() {
    let p = temp_project();
    std::fs::create_dir_all(p.path().join("dist")).unwrap();
    for (text, needle) in [
        ("{", "EOF while parsing"),
        (r#"{"manifest": {}, "signature": "00"}"#, "missing field"),
        ("[]", "expected the bundle as a JSON object"),
        ("\"bundle\"", "invalid type"),
    ] {
        std::fs::write(p.path().join(BUNDLE), text).unwrap();
        let o = run(xtask(p.path()).args(["evidence", "verify", BUNDLE]));
        let err = common::assert_one_line_error(&o, "xtask", 2, needle);
        assert!(
            err.starts_with(&format!("xtask: malformed bundle {BUNDLE}: ")),
            "{err}"
        );
        assert!(err.contains(needle), "{err}");
    }
}
