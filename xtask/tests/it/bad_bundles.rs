//! The bad-bundle corpus: malformed and tampered evidence bundles, kept as
//! files under `tests/data/bad-bundles/`, each run through the real binary.
//!
//! The files are made by [`corpus`] below, which is their documentation: every
//! tampered-but-well-formed bundle is signed for real with the tests' key
//! (`common::TEST_KEY`), so nothing in the corpus is a hash copied by hand.
//! `corpus_files_are_generated` checks that the files on disk are exactly what
//! the generator makes; after changing the generator, rewrite them with
//!
//! ```text
//! MC_BLESS_CORPUS=1 cargo test -p xtask --test it bad_bundles::
//! ```
//!
//! and review the diff like code. Cases that need the file system (symbolic
//! links, FIFOs, odd file names on disk) are built at run time instead.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{run, stderr, stdout, temp_project, xtask, TEST_KEY};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use xtask::evidence::{self, Artifact, Bundle, Key, Manifest, Signing, ALGO_HMAC, ALGO_SEED};

/// How a bad bundle must be turned away.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Refused before verification: exit 2, nothing on stdout, one line on
    /// stderr that contains this text.
    Malformed(&'static str),
    /// Verified and found bad: exit 2, a JSON verdict with `ok: false` whose
    /// reasons (or rejected paths' reasons) contain this text.
    NotOk(&'static str),
}
use Expect::{Malformed, NotOk};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad-bundles")
}

fn key() -> Key {
    Key::new(TEST_KEY, "env:MC_SIGNING_KEY")
}

/// The sha256 of `out/sample.txt` in [`temp_project`].
fn sample_sha() -> String {
    xtask::util::hex(&Sha256::digest(b"hello evidence\n"))
}

fn artifact(path: &str, sha256: &str, size: Option<u64>) -> Artifact {
    Artifact {
        path: path.to_string(),
        sha256: sha256.to_string(),
        size,
    }
}

fn sample() -> Artifact {
    artifact("out/sample.txt", &sample_sha(), Some(15))
}

/// A manifest as `pack` makes it for [`temp_project`], with `artifacts`.
fn manifest(artifacts: Vec<Artifact>) -> Manifest {
    Manifest {
        artifacts,
        dir: Some("out".into()),
        signing: Signing {
            algo: ALGO_HMAC.into(),
            key_ref: "env:MC_SIGNING_KEY".into(),
        },
        ts: 1_700_000_000,
        version: "v0.3.2-mc".into(),
    }
}

/// A manifest in the seed kit's shape (no `dir`, no sizes, the weak algo).
fn seed_manifest(artifacts: Vec<Artifact>) -> Manifest {
    Manifest {
        dir: None,
        signing: Signing {
            algo: ALGO_SEED.into(),
            key_ref: "env:MC_SIGNING_KEY".into(),
        },
        ..manifest(artifacts)
    }
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut text = serde_json::to_string_pretty(v).unwrap();
    text.push('\n');
    text.into_bytes()
}

fn bundle_value(m: &Manifest, signature: String) -> Value {
    serde_json::to_value(Bundle {
        manifest: m.clone(),
        signature,
    })
    .unwrap()
}

/// `m` signed for real with the tests' key.
fn signed(m: &Manifest) -> Vec<u8> {
    pretty(&bundle_value(m, evidence::sign(m, &key())))
}

/// The bundle `pack` makes for [`temp_project`] (it verifies).
fn good() -> Value {
    let m = manifest(vec![sample()]);
    bundle_value(&m, evidence::sign(&m, &key()))
}

/// The good bundle changed by `edit`, its signature kept.
fn edited(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v = good();
    edit(&mut v);
    pretty(&v)
}

/// The good bundle's text with `from` replaced by `to` (for what a JSON value
/// cannot hold, like duplicate keys).
fn replaced(from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(pretty(&good())).unwrap();
    assert!(text.contains(from), "{from:?} is in the good bundle");
    text.replacen(from, to, 1).into_bytes()
}

fn remove(v: &mut Value, pointer: &str, field: &str) {
    v.pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .and_then(|o| o.remove(field))
        .unwrap_or_else(|| panic!("{pointer}/{field} exists"));
}

fn set(v: &mut Value, pointer: &str, value: Value) {
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} exists")) = value;
}

/// A signed bundle listing one artifact at `path` (and the real sample file).
fn signed_path(path: &str) -> Vec<u8> {
    signed(&manifest(vec![
        artifact(path, &sample_sha(), Some(15)),
        sample(),
    ]))
}

/// Every file of the corpus: its name, its bytes and how it must be refused.
fn corpus() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let sig = good()["signature"].as_str().unwrap().to_string();
    let good_text = pretty(&good());
    let seed = seed_manifest(vec![artifact("out/sample.txt", &sample_sha(), None)]);
    let seed_sig = evidence::sign_seed(&seed, &key());
    let mut deep = String::from("{\"manifest\": ");
    deep.push_str(&"[".repeat(200));
    deep.push_str(&"]".repeat(200));
    deep.push_str(&format!(", \"signature\": \"{sig}\"}}\n"));

    vec![
        // Not JSON, or not one JSON object.
        (
            "not-json.json",
            b"this is not json\n".to_vec(),
            Malformed("expected ident"),
        ),
        (
            "empty-file.json",
            Vec::new(),
            Malformed("EOF while parsing"),
        ),
        (
            "truncated.json",
            good_text[..good_text.len() / 2].to_vec(),
            Malformed("EOF while parsing"),
        ),
        (
            "trailing-garbage.json",
            [good_text.as_slice(), b"{}\n"].concat(),
            Malformed("trailing characters"),
        ),
        (
            "top-level-array.json",
            pretty(&json!([good()])),
            Malformed("expected the bundle as a JSON object"),
        ),
        (
            "top-level-null.json",
            b"null\n".to_vec(),
            Malformed("invalid type: null"),
        ),
        // Arrays in place of objects: serde's derived structs accept them,
        // and these are signed for real, so they would otherwise verify.
        (
            "bundle-as-array.json",
            pretty(&json!([good()["manifest"], good()["signature"]])),
            Malformed("expected the bundle as a JSON object"),
        ),
        (
            "manifest-as-array.json",
            {
                let m = &good()["manifest"];
                let fields = json!([
                    m["artifacts"],
                    m["dir"],
                    m["signing"],
                    m["ts"],
                    m["version"]
                ]);
                pretty(&json!({"manifest": fields, "signature": good()["signature"]}))
            },
            Malformed("expected `manifest` as a JSON object"),
        ),
        (
            "signing-as-array.json",
            edited(|v| {
                set(
                    v,
                    "/manifest/signing",
                    json!([ALGO_HMAC, "env:MC_SIGNING_KEY"]),
                )
            }),
            Malformed("expected `signing` as a JSON object"),
        ),
        (
            "artifact-as-array.json",
            edited(|v| {
                set(
                    v,
                    "/manifest/artifacts/0",
                    json!(["out/sample.txt", sample_sha(), 15]),
                )
            }),
            Malformed("expected each artifact as a JSON object"),
        ),
        (
            "utf8-bom.json",
            [b"\xef\xbb\xbf".as_slice(), &good_text].concat(),
            Malformed("expected value"),
        ),
        (
            "utf16le.json",
            String::from_utf8(good_text.clone())
                .unwrap()
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect(),
            Malformed("key must be a string"),
        ),
        (
            "deep-nesting.json",
            deep.into_bytes(),
            Malformed("invalid type: sequence"),
        ),
        (
            "invalid-utf8-path.json",
            replaced("out/sample.txt", "out/\u{1}sample.txt")
                .into_iter()
                .map(|b| if b == 1 { 0xff } else { b })
                .collect(),
            Malformed("invalid unicode code point"),
        ),
        (
            "lone-surrogate-path.json",
            replaced("out/sample.txt", "out/\\ud800.txt"),
            Malformed("unexpected end of hex escape"),
        ),
        // Missing fields.
        (
            "missing-manifest.json",
            edited(|v| remove(v, "", "manifest")),
            Malformed("missing field `manifest`"),
        ),
        (
            "missing-signature.json",
            edited(|v| remove(v, "", "signature")),
            Malformed("missing field `signature`"),
        ),
        (
            "missing-artifacts.json",
            edited(|v| remove(v, "/manifest", "artifacts")),
            Malformed("missing field `artifacts`"),
        ),
        (
            "missing-signing.json",
            edited(|v| remove(v, "/manifest", "signing")),
            Malformed("missing field `signing`"),
        ),
        (
            "missing-algo.json",
            edited(|v| remove(v, "/manifest/signing", "algo")),
            Malformed("missing field `algo`"),
        ),
        (
            "missing-ts.json",
            edited(|v| remove(v, "/manifest", "ts")),
            Malformed("missing field `ts`"),
        ),
        (
            "missing-path.json",
            edited(|v| remove(v, "/manifest/artifacts/0", "path")),
            Malformed("missing field `path`"),
        ),
        (
            "missing-dir.json",
            signed(&Manifest {
                dir: None,
                ..manifest(vec![sample()])
            }),
            Malformed("manifest has no `dir`"),
        ),
        (
            "missing-size.json",
            signed(&manifest(vec![artifact(
                "out/sample.txt",
                &sample_sha(),
                None,
            )])),
            Malformed("missing `size`"),
        ),
        // Wrong types and numbers out of range.
        (
            "ts-is-string.json",
            edited(|v| set(v, "/manifest/ts", json!("1700000000"))),
            Malformed("invalid type: string"),
        ),
        (
            "ts-is-float.json",
            edited(|v| set(v, "/manifest/ts", json!(1_700_000_000.5))),
            Malformed("invalid type: floating point"),
        ),
        (
            "ts-negative.json",
            edited(|v| set(v, "/manifest/ts", json!(-1))),
            Malformed("invalid value: integer `-1`"),
        ),
        (
            "ts-above-u64.json",
            replaced("1700000000", "18446744073709551616"),
            Malformed("expected u64"),
        ),
        (
            "size-huge-exponent.json",
            replaced("\"size\": 15", "\"size\": 1e999"),
            Malformed("number out of range"),
        ),
        (
            "artifacts-is-object.json",
            edited(|v| {
                set(
                    v,
                    "/manifest/artifacts",
                    json!({"out/sample.txt": sample_sha()}),
                )
            }),
            Malformed("invalid type: map"),
        ),
        (
            "signature-is-number.json",
            edited(|v| set(v, "/signature", json!(12345))),
            Malformed("invalid type: integer"),
        ),
        (
            "version-is-null.json",
            edited(|v| set(v, "/manifest/version", Value::Null)),
            Malformed("invalid type: null"),
        ),
        // Bad hex and unknown algorithms.
        (
            "signature-non-hex.json",
            edited(|v| set(v, "/signature", json!("z".repeat(64)))),
            Malformed("signature is not 64 lowercase hex digits"),
        ),
        (
            "signature-uppercase-hex.json",
            edited(|v| set(v, "/signature", json!(sig.to_uppercase()))),
            Malformed("signature is not 64 lowercase hex digits"),
        ),
        (
            "signature-short.json",
            edited(|v| set(v, "/signature", json!(&sig[..63]))),
            Malformed("signature is not 64 lowercase hex digits"),
        ),
        (
            "signature-empty.json",
            edited(|v| set(v, "/signature", json!(""))),
            Malformed("signature is not 64 lowercase hex digits"),
        ),
        (
            "sha256-non-hex.json",
            edited(|v| set(v, "/manifest/artifacts/0/sha256", json!("g".repeat(64)))),
            Malformed("sha256 is not 64 lowercase hex digits"),
        ),
        (
            "unknown-algo.json",
            edited(|v| set(v, "/manifest/signing/algo", json!("md5"))),
            Malformed("unknown signing algo \"md5\""),
        ),
        (
            "algo-other-case.json",
            edited(|v| set(v, "/manifest/signing/algo", json!("HMAC-SHA256"))),
            Malformed("unknown signing algo"),
        ),
        // Duplicate and unknown fields.
        (
            "dup-keys-bundle.json",
            replaced(
                "\"signature\":",
                &format!("\"signature\": \"{}\",\n  \"signature\":", "0".repeat(64)),
            ),
            Malformed("duplicate field `signature`"),
        ),
        (
            "dup-keys-manifest.json",
            replaced("\"version\":", "\"version\": \"v9.9.9\",\n    \"version\":"),
            Malformed("duplicate field `version`"),
        ),
        (
            "dup-keys-artifact.json",
            replaced(
                "\"sha256\":",
                &format!("\"sha256\": \"{}\",\n        \"sha256\":", "0".repeat(64)),
            ),
            Malformed("duplicate field `sha256`"),
        ),
        (
            "dup-keys-escaped.json",
            replaced(
                "\"signature\":",
                &format!(
                    "\"signatur\\u0065\": \"{}\",\n  \"signature\":",
                    "0".repeat(64)
                ),
            ),
            Malformed("duplicate field `signature`"),
        ),
        (
            "unknown-field-bundle.json",
            edited(|v| v["comment"] = json!("trust me")),
            Malformed("unknown field `comment`"),
        ),
        (
            "unknown-field-manifest.json",
            edited(|v| v["manifest"]["note"] = json!("unsigned")),
            Malformed("unknown field `note`"),
        ),
        (
            "unknown-field-artifact.json",
            edited(|v| v["manifest"]["artifacts"][0]["mode"] = json!("0755")),
            Malformed("unknown field `mode`"),
        ),
        (
            "unknown-field-signing-key.json",
            edited(|v| v["manifest"]["signing"]["key"] = json!(TEST_KEY)),
            Malformed("unknown field `key`"),
        ),
        // The same file listed twice (also once written with a JSON escape).
        (
            "dup-path.json",
            signed(&manifest(vec![sample(), sample()])),
            Malformed("\"out/sample.txt\" is listed twice"),
        ),
        (
            "dup-path-escaped.json",
            {
                let text = String::from_utf8(signed(&manifest(vec![sample(), sample()]))).unwrap();
                let at = text.rfind("\"out/sample.txt\"").unwrap();
                format!("{}\"out\\/sample.txt\"{}", &text[..at], &text[at + 16..]).into_bytes()
            },
            Malformed("is listed twice"),
        ),
        // Well-formed, with a signature that does not cover this manifest.
        (
            "signed-with-other-key.json",
            pretty(&bundle_value(
                &manifest(vec![sample()]),
                evidence::sign(
                    &manifest(vec![sample()]),
                    &Key::new("another-key", "env:MC_SIGNING_KEY"),
                ),
            )),
            NotOk("signature does not match"),
        ),
        (
            "signature-from-other-manifest.json",
            {
                let other = Manifest {
                    version: "v9.9.9".into(),
                    ..manifest(vec![sample()])
                };
                pretty(&bundle_value(
                    &manifest(vec![sample()]),
                    evidence::sign(&other, &key()),
                ))
            },
            NotOk("signature does not match"),
        ),
        (
            "ts-edited-after-signing.json",
            edited(|v| set(v, "/manifest/ts", json!(1_700_000_001))),
            NotOk("signature does not match"),
        ),
        (
            "keyref-edited-after-signing.json",
            edited(|v| set(v, "/manifest/signing/keyRef", json!("env:OTHER"))),
            NotOk("signature does not match"),
        ),
        (
            "sha256-edited-after-signing.json",
            edited(|v| set(v, "/manifest/artifacts/0/sha256", json!("0".repeat(64)))),
            NotOk("signature does not match"),
        ),
        (
            "algo-downgraded-to-seed.json",
            edited(|v| set(v, "/manifest/signing/algo", json!(ALGO_SEED))),
            NotOk("signature does not match"),
        ),
        (
            "seed-signature-moved-to-hmac.json",
            pretty(&bundle_value(&manifest(vec![sample()]), seed_sig.clone())),
            NotOk("signature does not match"),
        ),
        (
            "seed-signature-moved-to-new-seed.json",
            {
                let new = seed_manifest(vec![artifact("out/sample.txt", &"0".repeat(64), None)]);
                pretty(&bundle_value(&new, seed_sig.clone()))
            },
            NotOk("signature does not match"),
        ),
        // Signed for real, but the files do not match.
        (
            "empty-manifest.json",
            signed(&manifest(Vec::new())),
            NotOk("1 file(s) not in the manifest"),
        ),
        (
            "sha256-wrong-but-signed.json",
            signed(&manifest(vec![artifact(
                "out/sample.txt",
                &"0".repeat(64),
                Some(15),
            )])),
            NotOk("1 file(s) changed"),
        ),
        (
            "size-wrong-but-signed.json",
            signed(&manifest(vec![artifact(
                "out/sample.txt",
                &sample_sha(),
                Some(16),
            )])),
            NotOk("1 file(s) changed"),
        ),
        (
            "size-u64-max.json",
            signed(&manifest(vec![artifact(
                "out/sample.txt",
                &sample_sha(),
                Some(u64::MAX),
            )])),
            NotOk("1 file(s) changed"),
        ),
        (
            "lists-missing-file.json",
            signed_path("out/gone.txt"),
            NotOk("1 file(s) missing"),
        ),
        (
            "unicode-path.json",
            signed_path("out/\u{202e}txt.exe\u{ff53}ample.txt"),
            NotOk("1 file(s) missing"),
        ),
        (
            "control-chars-path.json",
            signed_path("out/new\nline\u{1b}[31m.txt"),
            NotOk("1 file(s) missing"),
        ),
        // Signed for real, with paths that must never be read.
        (
            "absolute-path.json",
            signed_path("/etc/passwd"),
            NotOk("absolute path"),
        ),
        (
            "dotdot-path.json",
            signed_path("out/../../../../etc/passwd"),
            NotOk("`..` component escapes the project root"),
        ),
        (
            "backslash-dotdot-path.json",
            signed_path("out\\..\\..\\etc\\passwd"),
            NotOk("`..` component escapes the project root"),
        ),
        (
            "windows-drive-path.json",
            signed_path("C:\\Windows\\win.ini"),
            NotOk("absolute path"),
        ),
        (
            "nul-in-path.json",
            signed_path("out/sample.txt\u{0}.sh"),
            NotOk("NUL byte in path"),
        ),
        (
            "empty-component-path.json",
            signed_path("out//sample.txt"),
            NotOk("path is not in normal form"),
        ),
        (
            "dot-component-path.json",
            signed_path("out/./sample.txt"),
            NotOk("path is not in normal form"),
        ),
        (
            "path-outside-dir.json",
            signed_path("Cargo.toml"),
            NotOk("outside the packed directory"),
        ),
        (
            "path-sharing-dir-prefix.json",
            signed_path("outside/secret.txt"),
            NotOk("outside the packed directory"),
        ),
        (
            "dir-dotdot.json",
            signed(&Manifest {
                dir: Some("..".into()),
                ..manifest(vec![artifact("../etc/passwd", &sample_sha(), Some(15))])
            }),
            NotOk("packed directory: `..` component"),
        ),
        (
            "dir-absolute.json",
            signed(&Manifest {
                dir: Some("/etc".into()),
                ..manifest(vec![artifact("/etc/passwd", &sample_sha(), Some(15))])
            }),
            NotOk("packed directory: absolute path"),
        ),
        (
            "dir-missing-on-disk.json",
            signed(&Manifest {
                dir: Some("gone".into()),
                ..manifest(Vec::new())
            }),
            NotOk("cannot list gone"),
        ),
    ]
}

/// Writes the corpus when `MC_BLESS_CORPUS` is set; otherwise checks that the
/// files on disk are exactly what [`corpus`] makes, and nothing else.
#[test]
fn corpus_files_are_generated() {
    let dir = corpus_dir();
    let cases = corpus();
    assert!(cases.len() >= 30, "the corpus keeps at least 30 bundles");
    let files: Vec<(&str, &[u8])> = cases.iter().map(|(n, b, _)| (*n, b.as_slice())).collect();
    common::bless_or_check_corpus(&dir, &files, "bad_bundles");
}

/// Runs `verify` on `bundle` (a path relative to `root`) and checks that it is
/// refused as `expect` says: exit 2, no panic, never ok.
fn check_refused(root: &Path, bundle: &str, expect: Expect) -> Output {
    let o = run(xtask(root).args(["evidence", "verify", bundle]));
    let (out, err) = (stdout(&o), stderr(&o));
    let ctx = format!(
        "{bundle}: status {:?}\nstdout:\n{out}\nstderr:\n{err}",
        o.status
    );
    common::assert_one_line_error(&o, "xtask", 2, "");
    match expect {
        Malformed(reason) => {
            assert!(out.is_empty(), "{ctx}");
            assert!(err.starts_with("xtask: malformed bundle "), "{ctx}");
            assert!(err.contains(reason), "expected {reason:?}: {ctx}");
        }
        NotOk(reason) => {
            let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {ctx}"));
            assert_eq!(v["ok"], json!(false), "{ctx}");
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
fn every_corpus_bundle_is_refused() {
    let project = temp_project();
    let root = project.path();
    std::fs::create_dir_all(root.join("dist")).unwrap();
    let cases = corpus();
    let mut failed = Vec::new();
    for (name, _, expect) in &cases {
        // The file on disk, not the generator's bytes: this is the corpus.
        std::fs::copy(corpus_dir().join(name), root.join("dist").join(name)).unwrap();
        let rel = format!("dist/{name}");
        if std::panic::catch_unwind(|| check_refused(root, &rel, *expect)).is_err() {
            failed.push(*name);
        }
    }
    assert!(failed.is_empty(), "not refused as expected: {failed:?}");
    // The project is untouched: the good bundle still verifies.
    std::fs::write(root.join("dist/good.json"), pretty(&good())).unwrap();
    let o = run(xtask(root).args(["evidence", "verify", "dist/good.json"]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn the_good_bundle_of_the_generator_is_what_pack_makes() {
    let project = temp_project();
    let root = project.path();
    let o = run(xtask(root).args(["evidence", "pack", "--out", "dist/b.json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(root.join("dist/b.json")).unwrap(),
        pretty(&good())
    );
}

/// A bundle for the given files, signed for real, at `dist/<name>`.
#[cfg(unix)]
fn write_signed(root: &Path, name: &str, artifacts: Vec<Artifact>) -> String {
    let rel = format!("dist/{name}");
    std::fs::create_dir_all(root.join("dist")).unwrap();
    std::fs::write(root.join(&rel), signed(&manifest(artifacts))).unwrap();
    rel
}

#[cfg(unix)]
#[test]
fn symlink_escaping_the_root_is_rejected_not_read() {
    use std::os::unix::fs::symlink;
    let project = temp_project();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "hello evidence\n").unwrap();
    let root = project.path();
    symlink(outside.path().join("secret"), root.join("out/link")).unwrap();
    let b = write_signed(
        root,
        "file-link.json",
        vec![sample(), artifact("out/link", &sample_sha(), Some(15))],
    );
    check_refused(root, &b, NotOk("symbolic link escapes the project root"));

    // A linked directory on the way is as bad as a linked file.
    std::fs::remove_file(root.join("out/link")).unwrap();
    symlink(outside.path(), root.join("out/sub")).unwrap();
    let b = write_signed(
        root,
        "dir-link.json",
        vec![
            sample(),
            artifact("out/sub/secret", &sample_sha(), Some(15)),
        ],
    );
    check_refused(root, &b, NotOk("symbolic link escapes the project root"));
}

#[cfg(unix)]
#[test]
fn symlink_inside_the_root_is_rejected() {
    let project = temp_project();
    let root = project.path();
    std::os::unix::fs::symlink("sample.txt", root.join("out/inner")).unwrap();
    let b = write_signed(
        root,
        "inner.json",
        vec![artifact("out/inner", &sample_sha(), Some(15)), sample()],
    );
    check_refused(
        root,
        &b,
        NotOk("symbolic link (evidence lists regular files only)"),
    );
}

#[cfg(unix)]
#[test]
fn symlinked_packed_directory_is_rejected() {
    let project = temp_project();
    let root = project.path();
    std::fs::rename(root.join("out"), root.join("real")).unwrap();
    std::os::unix::fs::symlink("real", root.join("out")).unwrap();
    let b = write_signed(root, "linked-out.json", vec![sample()]);
    let o = check_refused(root, &b, NotOk("symbolic link"));
    assert!(
        stdout(&o).contains("out is a symbolic link"),
        "{}",
        stdout(&o)
    );
}

#[cfg(unix)]
#[test]
fn non_utf8_file_name_on_disk_is_a_reason_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let project = temp_project();
    let root = project.path();
    let b = write_signed(root, "b.json", vec![sample()]);
    let name = std::ffi::OsStr::from_bytes(b"bad-\xff-name.txt");
    std::fs::write(root.join("out").join(name), "x").unwrap();
    let o = check_refused(root, &b, NotOk("file name is not valid UTF-8"));
    assert!(
        stdout(&o).contains("bad-\u{fffd}-name.txt"),
        "the reason names the file"
    );
}

#[test]
fn directory_where_a_file_is_listed_is_rejected() {
    let project = temp_project();
    let root = project.path();
    std::fs::create_dir(root.join("out/dir.txt")).unwrap();
    std::fs::write(root.join("out/dir.txt/inner"), "x").unwrap();
    let rel = "dist/b.json";
    std::fs::create_dir_all(root.join("dist")).unwrap();
    let inner = artifact(
        "out/dir.txt/inner",
        &xtask::util::hex(&Sha256::digest(b"x")),
        Some(1),
    );
    let m = manifest(vec![
        artifact("out/dir.txt", &sample_sha(), Some(15)),
        inner,
        sample(),
    ]);
    std::fs::write(root.join(rel), signed(&m)).unwrap();
    check_refused(root, rel, NotOk("cannot read: not a regular file"));
}
