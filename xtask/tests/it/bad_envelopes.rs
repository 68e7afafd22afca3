//! The bad-envelope corpus: malformed and tampered DSSE envelopes, kept as
//! files under `tests/data/bad-envelopes/`, each run through the real binary
//! with the tests' public key (`tests/data/ed25519-test.pem.pub`).
//!
//! The files are made by [`corpus`] below, which is their documentation: every
//! envelope that needs a signature is signed for real with the tests' fixed
//! key (or, where the case says so, with the other fixed key); Ed25519 is
//! deterministic, so the generator gives the same bytes every time.
//! `corpus_files_are_generated` checks that the files on disk are exactly what
//! the generator makes; after changing the generator, rewrite them with
//!
//! ```text
//! MC_BLESS_CORPUS=1 cargo test -p xtask --test it bad_envelopes::
//! ```
//!
//! and review the diff like code.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine;
use common::{ed25519_key, run, stderr, stdout, temp_project, xtask};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use xtask::attest::dsse::{self, pae};
use xtask::attest::keys::Ed25519Key;
use xtask::attest::statement::{EVIDENCE_PREDICATE, PAYLOAD_TYPE, STATEMENT_TYPE};

/// How a bad envelope must be turned away.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Refused before any file is read: exit 2, nothing on stdout, one line
    /// on stderr that contains this text.
    Malformed(&'static str),
    /// Judged and found bad: exit 2, a JSON verdict with `ok: false` whose
    /// reasons (or rejected paths' reasons) contain this text.
    NotOk(&'static str),
}
use Expect::{Malformed, NotOk};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad-envelopes")
}

fn key(name: &str) -> Ed25519Key {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/ed25519-{name}.pem"));
    Ed25519Key::from_pem(&std::fs::read(path).unwrap(), "test").unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The sha256 of `out/sample.txt` in [`temp_project`] (the seed's sample).
fn sample_sha() -> String {
    xtask::util::hex(&Sha256::digest(b"hello evidence\n"))
}

fn subject(name: &str, sha256: &str) -> Value {
    json!({"name": name, "digest": {"sha256": sha256}})
}

/// A Statement as `pack --format dsse` makes it, with `subjects`.
fn statement(subjects: Vec<Value>) -> Value {
    json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": EVIDENCE_PREDICATE,
        "predicate": {"version": "v0.3.2-mc", "time": "2023-11-14T22:13:20Z", "dir": "out",
                      "build": {"commit": null, "dirty": null, "rustc": null, "cargo_lock_sha256": null}}
    })
}

fn good_statement() -> Value {
    statement(vec![subject("out/sample.txt", &sample_sha())])
}

/// `payload` of `payload_type`, signed for real with the test key.
fn signed_bytes(payload_type: &str, payload: &[u8]) -> Value {
    serde_json::to_value(dsse::sign(payload_type, payload, &key("test"))).unwrap()
}

fn signed(st: &Value) -> Value {
    signed_bytes(PAYLOAD_TYPE, &serde_json::to_vec(st).unwrap())
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut text = serde_json::to_string_pretty(v).unwrap();
    text.push('\n');
    text.into_bytes()
}

/// The good envelope changed by `edit`, its signature kept.
fn edited(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v = signed(&good_statement());
    edit(&mut v);
    pretty(&v)
}

/// The good envelope's text with `from` replaced by `to` (for what a JSON
/// value cannot hold, like duplicate keys).
fn replaced(from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(pretty(&signed(&good_statement()))).unwrap();
    assert!(text.contains(from), "{from:?} is in the good envelope");
    text.replacen(from, to, 1).into_bytes()
}

fn sig_of(v: &Value) -> String {
    v["signatures"][0]["sig"].as_str().unwrap().to_string()
}

/// Every file of the corpus: its name, its bytes and how it must be refused.
fn corpus() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let good = signed(&good_statement());
    let test_keyid = key("test").keyid().to_string();
    let payload = serde_json::to_vec(&good_statement()).unwrap();
    let changed =
        serde_json::to_vec(&statement(vec![subject("out/sample.txt", &"0".repeat(64))])).unwrap();
    let not_signed = "does not verify";
    let not_named = "no signature names the key";
    vec![
        // Tampered after signing.
        (
            "payload-changed.json",
            edited(|v| v["payload"] = json!(b64(&changed))),
            NotOk(not_signed),
        ),
        (
            "payload-type-changed.json",
            edited(|v| v["payloadType"] = json!("application/vnd.in-toto+jsonl")),
            NotOk(not_signed),
        ),
        (
            "payload-truncated.json",
            edited(|v| v["payload"] = json!(b64(&payload[..payload.len() - 3]))),
            NotOk(not_signed),
        ),
        (
            "payload-extra-whitespace.json",
            edited(|v| {
                let mut p = payload.clone();
                p.push(b' ');
                v["payload"] = json!(b64(&p));
            }),
            NotOk(not_signed),
        ),
        // Signatures that are not the test key's over this PAE.
        (
            "signed-by-another-key.json",
            pretty(
                &serde_json::to_value(dsse::sign(PAYLOAD_TYPE, &payload, &key("other"))).unwrap(),
            ),
            NotOk(not_named),
        ),
        (
            "another-key-with-our-keyid.json",
            {
                let mut v = serde_json::to_value(dsse::sign(PAYLOAD_TYPE, &payload, &key("other")))
                    .unwrap();
                v["signatures"][0]["keyid"] = json!(test_keyid);
                pretty(&v)
            },
            NotOk(not_signed),
        ),
        (
            "keyid-missing.json",
            edited(|v| {
                v["signatures"][0].as_object_mut().unwrap().remove("keyid");
            }),
            NotOk(not_named),
        ),
        (
            "keyid-empty.json",
            edited(|v| v["signatures"][0]["keyid"] = json!("")),
            NotOk(not_named),
        ),
        (
            "keyid-wrong.json",
            edited(|v| v["signatures"][0]["keyid"] = json!("0".repeat(64))),
            NotOk(not_named),
        ),
        (
            "keyid-other-case.json",
            edited(|v| v["signatures"][0]["keyid"] = json!(test_keyid.to_uppercase())),
            NotOk(not_named),
        ),
        (
            "sig-over-payload-not-pae.json",
            edited(|v| {
                v["signatures"][0]["sig"] = json!(b64(&key("test").sign(&payload).to_bytes()))
            }),
            NotOk(not_signed),
        ),
        (
            "sig-over-pae-of-other-type.json",
            edited(|v| {
                let other = pae("application/json", &payload);
                v["signatures"][0]["sig"] = json!(b64(&key("test").sign(&other).to_bytes()));
            }),
            NotOk(not_signed),
        ),
        (
            "sig-truncated.json",
            edited(|v| {
                let sig = base64::engine::general_purpose::STANDARD
                    .decode(sig_of(v))
                    .unwrap();
                v["signatures"][0]["sig"] = json!(b64(&sig[..63]));
            }),
            NotOk(not_signed),
        ),
        (
            "sig-bit-flipped.json",
            edited(|v| {
                let mut sig = base64::engine::general_purpose::STANDARD
                    .decode(sig_of(v))
                    .unwrap();
                sig[10] ^= 1;
                v["signatures"][0]["sig"] = json!(b64(&sig));
            }),
            NotOk(not_signed),
        ),
        (
            "sig-empty.json",
            edited(|v| v["signatures"][0]["sig"] = json!("")),
            NotOk(not_signed),
        ),
        (
            "payload-over-padded.json",
            edited(|v| {
                let p = v["payload"].as_str().unwrap().to_string();
                v["payload"] = json!(format!("{p}="));
            }),
            Malformed("`payload` is not base64"),
        ),
        // Fields that do not decode.
        (
            "sig-not-base64.json",
            edited(|v| v["signatures"][0]["sig"] = json!("not base64!")),
            Malformed("`sig` is not base64"),
        ),
        (
            "sig-cut-mid-quantum.json",
            edited(|v| {
                let s = sig_of(v);
                assert_eq!(s.len() % 4, 0);
                v["signatures"][0]["sig"] = json!(s[..s.len() - 7]);
            }),
            Malformed("`sig` is not base64"),
        ),
        (
            "payload-not-base64.json",
            edited(|v| v["payload"] = json!("{\"_type\": 1}")),
            Malformed("`payload` is not base64"),
        ),
        (
            "payload-cut-mid-quantum.json",
            edited(|v| {
                // A length of 4n + 1 characters is no base64 at all.
                let p = v["payload"].as_str().unwrap().to_string();
                assert_eq!(p.len() % 4, 0);
                v["payload"] = json!(p[..p.len() - 3]);
            }),
            Malformed("`payload` is not base64"),
        ),
        (
            "payload-mixed-alphabets.json",
            edited(|v| v["payload"] = json!("ab+_")),
            Malformed("`payload` is not base64"),
        ),
        // Not an envelope's shape.
        (
            "payload-missing.json",
            edited(|v| {
                v.as_object_mut().unwrap().remove("payload");
            }),
            Malformed("missing field `payload`"),
        ),
        (
            "payload-type-missing.json",
            edited(|v| {
                v.as_object_mut().unwrap().remove("payloadType");
            }),
            Malformed("missing field `payloadType`"),
        ),
        (
            "signatures-missing.json",
            edited(|v| {
                v.as_object_mut().unwrap().remove("signatures");
            }),
            Malformed("missing field `signatures`"),
        ),
        (
            "signatures-empty.json",
            edited(|v| v["signatures"] = json!([])),
            Malformed("not signed"),
        ),
        (
            "signatures-object.json",
            edited(|v| v["signatures"] = json!({"sig": ""})),
            Malformed("invalid type"),
        ),
        (
            "signature-as-array.json",
            edited(|v| v["signatures"] = json!([["k", "s"]])),
            Malformed("a JSON object"),
        ),
        (
            "sig-missing.json",
            edited(|v| {
                v["signatures"][0].as_object_mut().unwrap().remove("sig");
            }),
            Malformed("missing field `sig`"),
        ),
        (
            "sig-number.json",
            edited(|v| v["signatures"][0]["sig"] = json!(7)),
            Malformed("invalid type"),
        ),
        (
            "payload-null.json",
            edited(|v| v["payload"] = json!(null)),
            Malformed("invalid type"),
        ),
        (
            "too-many-signatures.json",
            edited(|v| {
                let one = v["signatures"][0].clone();
                v["signatures"] = Value::Array(vec![one; 65]);
            }),
            Malformed("65 signatures"),
        ),
        (
            "dup-payload-key.json",
            replaced(
                "\"payloadType\"",
                "\"payload\": \"e30=\",\n  \"payloadType\"",
            ),
            Malformed("duplicate field `payload`"),
        ),
        (
            "envelope-as-array.json",
            pretty(&json!([
                good["payload"],
                good["payloadType"],
                good["signatures"]
            ])),
            Malformed("malformed bundle"),
        ),
        (
            "truncated-json.json",
            pretty(&good)[..200].to_vec(),
            Malformed("EOF"),
        ),
        // Signed for real, but not a Statement the kit accepts.
        (
            "wrong-payload-type-signed.json",
            pretty(&signed_bytes("application/json", &payload)),
            Malformed("payloadType is \"application/json\""),
        ),
        (
            "statement-wrong-type.json",
            pretty(&signed(&{
                let mut st = good_statement();
                st["_type"] = json!("https://in-toto.io/Statement/v0.1");
                st
            })),
            Malformed("`_type` is \"https://in-toto.io/Statement/v0.1\""),
        ),
        (
            "statement-not-json.json",
            pretty(&signed_bytes(PAYLOAD_TYPE, b"hello evidence\n")),
            Malformed("statement: expected value"),
        ),
        (
            "statement-as-array.json",
            pretty(&signed(&json!([STATEMENT_TYPE, [], EVIDENCE_PREDICATE]))),
            Malformed("statement: invalid type"),
        ),
        (
            "statement-dup-subject.json",
            pretty(&signed(&statement(vec![
                subject("out/sample.txt", &sample_sha()),
                subject("out/sample.txt", &sample_sha()),
            ]))),
            Malformed("\"out/sample.txt\" is listed twice"),
        ),
        (
            "statement-subject-no-name.json",
            pretty(&signed(&statement(vec![
                json!({"digest": {"sha256": sample_sha()}}),
            ]))),
            Malformed("has no `name`"),
        ),
        (
            "statement-subject-no-sha256.json",
            pretty(&signed(&statement(vec![
                json!({"name": "out/sample.txt", "digest": {"sha512": "00"}}),
            ]))),
            Malformed("has no `digest.sha256`"),
        ),
        (
            "statement-subject-upper-hex.json",
            pretty(&signed(&statement(vec![subject(
                "out/sample.txt",
                &sample_sha().to_uppercase(),
            )]))),
            Malformed("not 64 lowercase hex"),
        ),
        (
            "statement-no-dir-two-dirs.json",
            pretty(&signed(&json!({
                "_type": STATEMENT_TYPE, "predicateType": "https://example.com/x/v1",
                "subject": [subject("out/sample.txt", &sample_sha()), subject("dist/x", &sample_sha())]
            }))),
            Malformed("do not lie in one directory"),
        ),
        // Signed, well-formed, but the subjects do not match the files or
        // reach outside the packed directory: judged, never read outside.
        (
            "subject-dotdot.json",
            pretty(&signed(&statement(vec![
                subject("out/sample.txt", &sample_sha()),
                subject("out/../../../../etc/passwd", &sample_sha()),
            ]))),
            NotOk("`..` component escapes the project root"),
        ),
        (
            "subject-absolute.json",
            pretty(&signed(&statement(vec![
                subject("out/sample.txt", &sample_sha()),
                subject("/etc/passwd", &sample_sha()),
            ]))),
            NotOk("absolute path"),
        ),
        (
            "subject-outside-dir.json",
            pretty(&signed(&statement(vec![
                subject("out/sample.txt", &sample_sha()),
                subject("xtask/secret", &sample_sha()),
            ]))),
            NotOk("outside the packed directory"),
        ),
        (
            "predicate-dir-dotdot.json",
            pretty(&signed(&{
                let mut st = good_statement();
                st["predicate"]["dir"] = json!("..");
                st
            })),
            NotOk("packed directory: `..`"),
        ),
        (
            "subject-digest-changed.json",
            pretty(&signed(&statement(vec![subject(
                "out/sample.txt",
                &"0".repeat(64),
            )]))),
            NotOk("1 file(s) changed"),
        ),
        (
            "subject-missing-file.json",
            pretty(&signed(&statement(vec![
                subject("out/sample.txt", &sample_sha()),
                subject("out/gone.txt", &sample_sha()),
            ]))),
            NotOk("1 file(s) missing"),
        ),
        (
            "summary-failed.json",
            pretty(&signed(&json!({
                "_type": STATEMENT_TYPE, "predicateType": "https://slsa.dev/verification_summary/v1",
                "subject": [subject("out/sample.txt", &sample_sha())],
                "predicate": {"verificationResult": "FAILED", "verifiedLevels": ["FAILED"]}
            }))),
            NotOk("verificationResult is \"FAILED\""),
        ),
        (
            "summary-without-result.json",
            pretty(&signed(&json!({
                "_type": STATEMENT_TYPE, "predicateType": "https://slsa.dev/verification_summary/v1",
                "subject": [subject("out/sample.txt", &sample_sha())],
                "predicate": {"verifiedLevels": ["MC_GOLIVE_PRODUCTION"]}
            }))),
            NotOk("verificationResult is missing"),
        ),
        (
            "subjects-empty.json",
            pretty(&signed(&statement(Vec::new()))),
            NotOk("1 file(s) not in the manifest"),
        ),
    ]
}

/// Writes the corpus when `MC_BLESS_CORPUS` is set; otherwise checks that the
/// files on disk are exactly what [`corpus`] makes, and nothing else.
#[test]
fn corpus_files_are_generated() {
    let dir = corpus_dir();
    let cases = corpus();
    assert!(cases.len() >= 40, "the corpus keeps at least 40 envelopes");
    let files: Vec<(&str, &[u8])> = cases.iter().map(|(n, b, _)| (*n, b.as_slice())).collect();
    common::bless_or_check_corpus(&dir, &files, "bad_envelopes");
}

/// Runs `verify --key` on `file` (relative to `root`) and checks that it is
/// refused as `expect` says: exit 2, no panic, never ok.
fn check_refused(root: &Path, file: &str, expect: Expect) -> Output {
    let o = run(xtask(root).args(["evidence", "verify", "--key", "keys/test.pem.pub", file]));
    let (out, err) = (stdout(&o), stderr(&o));
    let ctx = format!(
        "{file}: status {:?}\nstdout:\n{out}\nstderr:\n{err}",
        o.status
    );
    assert_eq!(o.status.code(), Some(2), "{ctx}");
    assert!(!err.contains("panicked"), "{ctx}");
    assert!(
        err.lines().count() <= 1,
        "at most one line on stderr: {ctx}"
    );
    match expect {
        Malformed(reason) => {
            assert!(out.is_empty(), "{ctx}");
            assert!(err.starts_with("xtask: malformed "), "{ctx}");
            assert!(err.contains(reason), "expected {reason:?}: {ctx}");
        }
        NotOk(reason) => {
            let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {ctx}"));
            assert_eq!(v["ok"], json!(false), "{ctx}");
            assert_eq!(v["algo"], json!("ed25519"), "{ctx}");
            let why = common::verdict_reasons(&v);
            assert!(
                why.iter().any(|w| w.contains(reason)),
                "expected {reason:?}: {ctx}"
            );
        }
    }
    o
}

#[test]
fn every_corpus_envelope_is_refused() {
    let project = temp_project();
    let root = project.path();
    ed25519_key(root, "test");
    std::fs::create_dir_all(root.join("dist")).unwrap();
    let mut failed = Vec::new();
    for (name, _, expect) in &corpus() {
        // The file on disk, not the generator's bytes: this is the corpus.
        std::fs::copy(corpus_dir().join(name), root.join("dist").join(name)).unwrap();
        let rel = format!("dist/{name}");
        if std::panic::catch_unwind(|| check_refused(root, &rel, *expect)).is_err() {
            failed.push(*name);
        }
        std::fs::remove_file(root.join(&rel)).unwrap();
    }
    assert!(failed.is_empty(), "not refused as expected: {failed:?}");
    // The project is untouched: the good envelope of the generator verifies,
    // and it is what `pack --format dsse` makes but for the build facts.
    std::fs::write(
        root.join("dist/good.json"),
        pretty(&signed(&good_statement())),
    )
    .unwrap();
    let o = run(xtask(root).args([
        "evidence",
        "verify",
        "--key",
        "keys/test.pem.pub",
        "dist/good.json",
    ]));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[cfg(unix)]
#[test]
fn subject_through_a_symbolic_link_is_rejected_not_read() {
    let project = temp_project();
    let root = project.path();
    ed25519_key(root, "test");
    std::os::unix::fs::symlink("/etc/hostname", root.join("out/link")).unwrap();
    let st = statement(vec![
        subject("out/sample.txt", &sample_sha()),
        subject("out/link", &sample_sha()),
    ]);
    std::fs::create_dir_all(root.join("dist")).unwrap();
    std::fs::write(root.join("dist/link.json"), pretty(&signed(&st))).unwrap();
    let o = check_refused(root, "dist/link.json", NotOk("symbolic link"));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["rejected"][0]["path"], json!("out/link"));
}

/// No one-bit change anywhere in a signed envelope gives an envelope that
/// verifies: every fifth byte of the good envelope (an Ed25519 check takes
/// 18 ms in a debug build), each with its lowest and its sixth bit flipped (a
/// letter's case), is refused or judged not ok, and nothing panics.
#[test]
fn no_one_bit_change_of_a_signed_envelope_verifies() {
    let project = temp_project();
    let root = project.path();
    let public = key("test").public();
    let good = pretty(&signed(&good_statement()));
    let env = dsse::parse(&good).unwrap();
    let path = Path::new("dist/e.json");
    assert!(xtask::attest::verify(root, &env, path, &public).unwrap().ok);
    let mut judged = 0;
    for i in (0..good.len()).step_by(5) {
        for bit in [0x01, 0x20] {
            let mut bytes = good.clone();
            bytes[i] ^= bit;
            let Ok(env) = dsse::parse(&bytes) else {
                continue;
            };
            if let Ok(v) = xtask::attest::verify(root, &env, path, &public) {
                judged += 1;
                assert!(
                    !v.ok,
                    "byte {i} ^ {bit:#x} verifies: {}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
    }
    assert!(
        judged > 50,
        "most flips still parse and are judged ({judged})"
    );
}
