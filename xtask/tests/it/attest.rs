//! Ed25519 keys, DSSE envelopes and the verification summary, through the
//! real binary: `evidence keygen`, `evidence pack --format dsse`, `evidence
//! verify --key`, and `golive` with an Ed25519 key. The envelope's exact
//! bytes are snapshotted with the fixed test key and epoch.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine;
use common::{ed25519_key, insta_settings, run, stderr, stdout, temp_project, xtask};
use serde_json::{json, Value};
use xtask::attest::{self, dsse, keys, statement};

/// `xtask` signing with the fixed test key.
fn signing(root: &Path) -> Command {
    common::signing_with(root, &ed25519_key(root, "test"))
}

fn pack(root: &Path, out: &str) -> Output {
    run(signing(root).args(["evidence", "pack", "--format", "dsse", "--out", out]))
}

fn verify(root: &Path, file: &str) -> Output {
    run(xtask(root).args(["evidence", "verify", "--key", "keys/test.pem.pub", file]))
}

fn verdict(o: &Output) -> Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(o), stderr(o)))
}

fn one_line_error(o: &Output, code: i32, text: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}{}", stdout(o));
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(text), "expected {text:?} in {err}");
    assert!(!err.contains("panicked"), "{err}");
}

fn read_envelope(root: &Path, file: &str) -> (Value, Value) {
    let env: Value = serde_json::from_slice(&std::fs::read(root.join(file)).unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    (env, serde_json::from_slice(&payload).unwrap())
}

#[test]
fn keygen_writes_a_private_key_for_its_owner_and_a_public_key_and_prints_the_id() {
    let project = temp_project();
    let root = project.path();
    let o = run(xtask(root).args(["evidence", "keygen", "--out", "keys/release.pem"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let private = std::fs::read(root.join("keys/release.pem")).unwrap();
    let public = keys::PublicKey::from_file(&root.join("keys/release.pem.pub")).unwrap();
    let key = attest::keys::Ed25519Key::from_pem(&private, "test").unwrap();
    assert_eq!(key.keyid(), public.keyid, "the pair belongs together");
    assert!(
        stdout(&o).contains(&format!("key id: {}", public.keyid)),
        "{}",
        stdout(&o)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| {
            std::fs::metadata(root.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("keys/release.pem"), 0o600);
    }
    // Two runs make two keys; a second run to the same path is refused and
    // leaves the first pair as it was.
    let again = run(xtask(root).args(["evidence", "keygen", "--out", "keys/release.pem"]));
    one_line_error(&again, 2, "exists");
    assert_eq!(
        std::fs::read(root.join("keys/release.pem")).unwrap(),
        private
    );
    std::fs::remove_file(root.join("keys/release.pem")).unwrap();
    let pub_only = run(xtask(root).args(["evidence", "keygen", "--out", "keys/release.pem"]));
    one_line_error(&pub_only, 2, "release.pem.pub exists");
    assert!(!root.join("keys/release.pem").exists(), "no half pair");
    let other = run(xtask(root).args(["evidence", "keygen", "--out", "keys/other.pem"]));
    assert!(other.status.success());
    assert_ne!(std::fs::read(root.join("keys/other.pem")).unwrap(), private);
}

#[test]
fn packed_envelope_verifies_and_is_reproducible() {
    let project = temp_project();
    let root = project.path();
    let o = pack(root, "dist/e.json");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).is_empty(),
        "no warning for a 0600 key: {}",
        stderr(&o)
    );
    let first = std::fs::read(root.join("dist/e.json")).unwrap();
    assert!(pack(root, "dist/e.json").status.success());
    assert_eq!(
        std::fs::read(root.join("dist/e.json")).unwrap(),
        first,
        "same files, key, epoch"
    );

    let v = verify(root, "dist/e.json");
    assert_eq!(v.status.code(), Some(0), "{}{}", stdout(&v), stderr(&v));
    let got = verdict(&v);
    assert_eq!(got["ok"], json!(true));
    assert_eq!(got["signature_ok"], json!(true));
    assert_eq!(got["algo"], json!("ed25519"));
    // The same keys as a bundle's verdict.
    let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "signature_ok",
            "algo",
            "weak_signature",
            "missing",
            "mismatch",
            "extra",
            "rejected",
            "reasons",
            "ok"
        ]
    );

    let (env, st) = read_envelope(root, "dist/e.json");
    assert_eq!(env["payloadType"], json!("application/vnd.in-toto+json"));
    let public = keys::PublicKey::from_file(&root.join("keys/test.pem.pub")).unwrap();
    assert_eq!(env["signatures"][0]["keyid"], json!(public.keyid));
    assert_eq!(st["_type"], json!("https://in-toto.io/Statement/v1"));
    assert_eq!(st["predicateType"], json!(statement::EVIDENCE_PREDICATE));
    assert_eq!(st["subject"][0]["name"], json!("out/sample.txt"));
    assert_eq!(st["predicate"]["dir"], json!("out"));
    assert_eq!(st["predicate"]["time"], json!("2023-11-14T22:13:20Z"));
}

#[test]
fn envelope_subjects_are_checked_like_a_bundles_files() {
    let project = temp_project();
    let root = project.path();
    assert!(pack(root, "dist/e.json").status.success());
    std::fs::write(root.join("out/sample.txt"), "changed\n").unwrap();
    std::fs::write(root.join("out/new.txt"), "new\n").unwrap();
    let v = verify(root, "dist/e.json");
    assert_eq!(v.status.code(), Some(2));
    let got = verdict(&v);
    assert_eq!(got["ok"], json!(false));
    assert_eq!(got["signature_ok"], json!(true));
    assert_eq!(got["mismatch"], json!(["out/sample.txt"]));
    assert_eq!(got["extra"], json!(["out/new.txt"]));
    std::fs::remove_file(root.join("out/sample.txt")).unwrap();
    let got = verdict(&verify(root, "dist/e.json"));
    assert_eq!(got["missing"], json!(["out/sample.txt"]));
}

#[test]
fn an_envelope_is_never_ok_without_a_public_key() {
    let project = temp_project();
    let root = project.path();
    assert!(pack(root, "dist/e.json").status.success());
    let o = run(xtask(root).args(["evidence", "verify", "dist/e.json"]));
    one_line_error(&o, 2, "--key");
    assert!(stdout(&o).is_empty());
    // MC_VERIFY_KEY_FILE stands in for --key; another key's public half fails.
    let o = run(xtask(root)
        .env("MC_VERIFY_KEY_FILE", root.join("keys/test.pem.pub"))
        .args(["evidence", "verify", "dist/e.json"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    ed25519_key(root, "other");
    let o = run(xtask(root).args([
        "evidence",
        "verify",
        "--key",
        "keys/other.pem.pub",
        "dist/e.json",
    ]));
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(verdict(&o)["signature_ok"], json!(false));
    // A private key or a missing file where the public key should be.
    let o = run(xtask(root).args([
        "evidence",
        "verify",
        "--key",
        "keys/test.pem",
        "dist/e.json",
    ]));
    one_line_error(&o, 2, "private key");
    let o = run(xtask(root).args([
        "evidence",
        "verify",
        "--key",
        "keys/none.pub",
        "dist/e.json",
    ]));
    one_line_error(&o, 2, "keys/none.pub");
}

#[test]
fn url_safe_and_unpadded_base64_are_accepted() {
    let project = temp_project();
    let root = project.path();
    assert!(pack(root, "dist/e.json").status.success());
    let (mut env, _) = read_envelope(root, "dist/e.json");
    let std = base64::engine::general_purpose::STANDARD;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for field in ["/payload", "/signatures/0/sig"] {
        let v = env.pointer_mut(field).unwrap();
        *v = json!(url.encode(std.decode(v.as_str().unwrap()).unwrap()));
    }
    std::fs::write(root.join("dist/url.json"), env.to_string()).unwrap();
    let o = verify(root, "dist/url.json");
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn key_given_for_a_bundle_or_hmac_key_for_an_envelope_is_refused() {
    let project = temp_project();
    let root = project.path();
    ed25519_key(root, "test");
    assert!(
        run(xtask(root).args(["evidence", "pack", "--out", "dist/b.json"]))
            .status
            .success()
    );
    let o = verify(root, "dist/b.json");
    one_line_error(&o, 2, "--key verifies DSSE envelopes");
    let o = run(xtask(root).args(common::PACK_DSSE));
    one_line_error(&o, 1, "--format dsse signs with an Ed25519 key");
    assert!(!root.join("dist/e.json").exists());
    // An Ed25519 key does not sign an HMAC bundle, nor verify one.
    let o = run(signing(root).args(["evidence", "pack", "--out", "dist/c.json"]));
    one_line_error(&o, 1, "--format dsse");
    let o = run(signing(root).args(["evidence", "verify", "dist/b.json"]));
    one_line_error(&o, 1, "PEM key");
}

/// Bad key files: each a one-line error naming the file and what is wrong.
#[test]
fn malformed_encrypted_or_wrong_type_key_files_are_one_line_errors() {
    let project = temp_project();
    let root = project.path();
    let test_pem = std::fs::read_to_string(ed25519_key(root, "test")).unwrap();
    let public = std::fs::read_to_string(root.join("keys/test.pem.pub")).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        ("truncated.pem", test_pem[..40].to_string(), "not a PEM key file"),
        (
            "garbled.pem",
            test_pem.replacen("MC4CAQAw", "MC4CAQEw", 1),
            "malformed PKCS#8",
        ),
        (
            "encrypted.pem",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhQ\n-----END ENCRYPTED PRIVATE KEY-----\n".into(),
            "encrypted",
        ),
        ("public.pem", public, "this is a public key"),
        (
            "rsa.pem",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----\n".into(),
            "not an Ed25519",
        ),
        (
            // A PKCS#8 X25519 key: right container, wrong algorithm.
            "x25519.pem",
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VuBCIEINDHvhKIvgBnsjlislSJ2fMOMS2CB6SMxrkvObn0AclM\n-----END PRIVATE KEY-----\n".into(),
            "not an Ed25519 key",
        ),
    ];
    for (name, text, why) in cases {
        let path = root.join("keys").join(name);
        std::fs::write(&path, &text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let o = run(common::signing_with(root, &path).args(common::PACK_DSSE));
        one_line_error(&o, 1, why);
        assert!(stderr(&o).contains(name), "names the file: {}", stderr(&o));
        assert!(!root.join("dist/e.json").exists());
    }
}

#[cfg(unix)]
#[test]
fn a_private_key_others_can_read_is_a_warning_and_refused_under_strict() {
    use std::os::unix::fs::PermissionsExt;
    let project = temp_project();
    let root = project.path();
    let key = ed25519_key(root, "test");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(common::signing_with(root, &key).args(common::PACK_DSSE));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning") && stderr(&o).contains("chmod 600"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_file(root.join("dist/e.json")).unwrap();
    let mut strict = common::signing_with(root, &key);
    strict.args(common::PACK_DSSE).arg("--strict");
    one_line_error(&run(&mut strict), 1, "--strict refuses it");
    assert!(!root.join("dist/e.json").exists());
}

#[test]
fn golive_with_an_ed25519_key_signs_a_verification_summary_of_the_evidence() {
    let project = temp_project();
    let root = project.path();
    let o = run(signing(root).args(["golive", "--seed", "7"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let vsa = "dist/golive-v0.3.2-mc.intoto.json";
    let v = verify(root, vsa);
    assert_eq!(v.status.code(), Some(0), "{}{}", stdout(&v), stderr(&v));
    let e = verify(root, "dist/evidence-v0.3.2-mc.json");
    assert_eq!(
        e.status.code(),
        Some(0),
        "the evidence is an envelope too: {}",
        stdout(&e)
    );
    let (_, st) = read_envelope(root, vsa);
    let (_, evidence) = read_envelope(root, "dist/evidence-v0.3.2-mc.json");
    assert_eq!(
        st["predicateType"],
        json!("https://slsa.dev/verification_summary/v1")
    );
    assert_eq!(
        st["subject"], evidence["subject"],
        "subjects are the evidence files"
    );
    let p = &st["predicate"];
    assert_eq!(p["verificationResult"], json!("PASSED"));
    assert_eq!(p["verifiedLevels"], json!(["MC_GOLIVE_PRODUCTION"]));
    assert_eq!(p["timeVerified"], json!("2023-11-14T22:13:20Z"));
    assert_eq!(
        p["inputAttestations"][0]["uri"],
        json!("dist/evidence-v0.3.2-mc.json")
    );
    let sha = xtask::evidence::hash_file(
        &root.join("dist/evidence-v0.3.2-mc.json"),
        &mut vec![0; 4096],
    )
    .unwrap()
    .0;
    assert_eq!(p["inputAttestations"][0]["digest"]["sha256"], json!(sha));

    // A failing rollout is signed as FAILED; an HMAC run removes the summary.
    let o = run(signing(root).args(["golive", "--seed", "7", "--degrade", "bad-release"]));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let (_, st) = read_envelope(root, vsa);
    assert_eq!(st["predicate"]["verificationResult"], json!("FAILED"));
    assert_eq!(st["predicate"]["verifiedLevels"], json!(["FAILED"]));
    // Well signed, files intact, and still not ok: a deploy step checking this
    // one file must not admit the release.
    let v = verify(root, vsa);
    assert_eq!(v.status.code(), Some(2), "{}", stdout(&v));
    let got = verdict(&v);
    assert_eq!(got["signature_ok"], json!(true));
    assert_eq!(got["mismatch"], json!([]));
    assert!(
        got["reasons"][0]
            .as_str()
            .unwrap()
            .contains("verificationResult is \"FAILED\""),
        "{got}"
    );
    let o = run(xtask(root).args(["golive", "--seed", "7"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        !root.join(vsa).exists(),
        "an HMAC run leaves no stale summary"
    );
}

/// The envelope and its decoded Statement for the fixed test key, epoch and
/// build facts, exactly.
#[test]
fn envelope_and_statement_snapshot() {
    let project = temp_project();
    let root = project.path();
    let pem = std::fs::read(ed25519_key(root, "test")).unwrap();
    let key = keys::Ed25519Key::from_pem(&pem, "env:MC_SIGNING_KEY_FILE").unwrap();
    let opts = xtask::evidence::PackOptions {
        root: root.to_path_buf(),
        dir: "out".into(),
        out: "dist/e.json".into(),
        version: "v0.3.2-mc".into(),
        ts: 1_700_000_000,
    };
    let facts = xtask::report::Facts {
        commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        dirty: Some(false),
        rustc: Some("rustc 1.95.0 (59807616e 2026-04-14)".into()),
        cargo_lock_sha256: Some("ab".repeat(32)),
    };
    attest::pack(&opts, &key, facts).unwrap();
    let text = std::fs::read_to_string(root.join("dist/e.json")).unwrap();
    let (_, st) = read_envelope(root, "dist/e.json");
    insta_settings().bind(|| {
        insta::assert_snapshot!("dsse_envelope", text);
        insta::assert_yaml_snapshot!("dsse_statement", st);
    });
    // The snapshot is a real signature: it opens with the public key.
    let env = dsse::parse(text.as_bytes()).unwrap();
    assert!(dsse::open(&env, &key.public()).is_ok());
}

#[test]
fn an_envelope_written_inside_the_packed_directory_is_not_its_own_subject() {
    let project = temp_project();
    let root = project.path();
    let o = pack(root, "out/e.json");
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, st) = read_envelope(root, "out/e.json");
    let names: Vec<&str> = st["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["out/sample.txt"]);
    let v = verify(root, "out/e.json");
    assert_eq!(
        v.status.code(),
        Some(0),
        "nor an extra file: {}",
        stdout(&v)
    );
}

/// The verdicts `verify` prints for an envelope: ok, files changed, and a
/// signature that does not cover the payload (the fixed test key's id).
#[test]
fn envelope_verdict_snapshots() {
    let project = temp_project();
    let root = project.path();
    assert!(pack(root, "dist/e.json").status.success());
    let ok = verdict(&verify(root, "dist/e.json"));
    std::fs::write(root.join("out/sample.txt"), "changed\n").unwrap();
    std::fs::write(root.join("out/new.txt"), "new\n").unwrap();
    let changed = verdict(&verify(root, "dist/e.json"));
    let (mut env, _) = read_envelope(root, "dist/e.json");
    env["payloadType"] = json!("application/json");
    std::fs::write(root.join("dist/t.json"), env.to_string()).unwrap();
    let tampered = verdict(&verify(root, "dist/t.json"));
    insta_settings().bind(|| {
        insta::assert_json_snapshot!("dsse_verify_ok", ok);
        insta::assert_json_snapshot!("dsse_verify_changed", changed);
        insta::assert_json_snapshot!("dsse_verify_tampered", tampered);
    });
}
