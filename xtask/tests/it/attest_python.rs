//! The kit's envelopes against the ecosystem's own verifier: Python's
//! securesystemslib (the library in-toto and TUF sign and verify with)
//! verifies what `evidence pack --format dsse` writes, and the kit verifies
//! an envelope securesystemslib signed, both over the seed's `out/`
//! (`out/sample.txt`).
//!
//! The interpreter is `<workspace>/.venv/bin/python` (made by `.ci/run`), or
//! `$MC_TEST_PYTHON`. Without it, or without securesystemslib in it, the
//! tests say they are skipped, except under `CI=true`, where they fail.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use common::{ed25519_key, run, stderr, stdout, temp_project, xtask};
use serde_json::{json, Value};
use xtask::attest::statement::EVIDENCE_PREDICATE;

/// The venv's interpreter with securesystemslib, or `None` (skipped) when it
/// is missing outside CI.
fn python() -> Option<PathBuf> {
    let python = std::env::var_os("MC_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import securesystemslib.dsse, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    let why = format!(
        "{} with securesystemslib[crypto] is missing (run .ci/run, or \
         `python3 -m venv .venv && .venv/bin/pip install 'securesystemslib[crypto]'`)",
        python.display()
    );
    common::skip(&why);
    None
}

/// Runs `script` with the interpreter in `root`; returns its stdout as JSON.
fn py(python: &Path, root: &Path, script: &str) -> Value {
    let o = run(Command::new(python)
        .args(["-c", script])
        .current_dir(root)
        .env("PYTHONDONTWRITEBYTECODE", "1"));
    assert!(
        o.status.success(),
        "python failed:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)))
}

/// Verifies `dist/e.json` with `keys/test.pem.pub` the way a standard in-toto
/// consumer does, and reports the key id, the Statement and the sha256 of
/// each subject's file as Python computes it.
const PY_VERIFY: &str = r#"
import hashlib, json
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

key = SSlibKey.from_crypto(load_pem_public_key(open("keys/test.pem.pub", "rb").read()))
env = Envelope.from_dict(json.load(open("dist/e.json")))
accepted = env.verify([key], 1)
statement = json.loads(env.payload)
files = {s["name"]: hashlib.sha256(open(s["name"], "rb").read()).hexdigest()
         for s in statement["subject"]}
print(json.dumps({"keyid": key.keyid, "accepted": sorted(accepted), "payloadType": env.payload_type,
                  "statement": statement, "files": files}))
"#;

#[test]
fn securesystemslib_verifies_the_kits_envelope() {
    let Some(python) = python() else { return };
    let project = temp_project();
    let root = project.path();
    let key = ed25519_key(root, "test");
    let o = run(common::signing_with(root, &key).args(common::PACK_DSSE));
    assert!(o.status.success(), "{}", stderr(&o));
    let got = py(&python, root, PY_VERIFY);
    let kit_keyid = xtask::attest::keys::PublicKey::from_file(&root.join("keys/test.pem.pub"))
        .unwrap()
        .keyid;
    assert_eq!(
        got["keyid"],
        json!(kit_keyid),
        "the same key id as securesystemslib's"
    );
    assert_eq!(got["accepted"], json!([kit_keyid]));
    assert_eq!(got["payloadType"], json!("application/vnd.in-toto+json"));
    let st = &got["statement"];
    assert_eq!(st["_type"], json!("https://in-toto.io/Statement/v1"));
    assert_eq!(st["subject"].as_array().unwrap().len(), 1);
    assert_eq!(st["subject"][0]["name"], json!("out/sample.txt"));
    assert_eq!(
        st["subject"][0]["digest"]["sha256"], got["files"]["out/sample.txt"],
        "the subject's digest is the file's sha256 as Python computes it"
    );

    // Tampering is caught by securesystemslib too: a payload edited after
    // signing does not verify.
    let mut env: Value =
        serde_json::from_slice(&std::fs::read(root.join("dist/e.json")).unwrap()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = String::from_utf8(b64.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap();
    assert!(payload.contains("v0.3.2-mc"));
    env["payload"] = json!(b64.encode(payload.replacen("v0.3.2-mc", "v9.9.9-mc", 1)));
    std::fs::write(root.join("dist/e.json"), env.to_string()).unwrap();
    let o = run(Command::new(&python)
        .args(["-c", PY_VERIFY])
        .current_dir(root));
    assert!(
        !o.status.success(),
        "securesystemslib refused the edited payload"
    );
    assert!(stderr(&o).contains("VerificationError"), "{}", stderr(&o));
}

/// Signs a Statement over `out/sample.txt` with `keys/test.pem` through
/// securesystemslib's own signer, and writes it to `dist/py.json`, with
/// URL-safe base64 when `urlsafe` is set (DSSE lets signers choose).
const PY_SIGN: &str = r#"
import base64, hashlib, json, sys
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner

signer = CryptoSigner(load_pem_private_key(open("keys/test.pem", "rb").read(), None))
digest = hashlib.sha256(open("out/sample.txt", "rb").read()).hexdigest()
statement = {"_type": "https://in-toto.io/Statement/v1",
             "subject": [{"name": "out/sample.txt", "digest": {"sha256": digest}}],
             "predicateType": PREDICATE,
             "predicate": {"version": "py", "time": "2023-11-14T22:13:20Z", "dir": "out"}}
env = Envelope(json.dumps(statement).encode(), "application/vnd.in-toto+json", {})
env.sign(signer)
out = env.to_dict()
if URLSAFE:
    for s in out["signatures"]:
        s["sig"] = base64.urlsafe_b64encode(base64.b64decode(s["sig"])).decode().rstrip("=")
    out["payload"] = base64.urlsafe_b64encode(env.payload).decode().rstrip("=")
json.dump(out, open("dist/py.json", "w"))
print(json.dumps({"keyid": signer.public_key.keyid}))
"#;

#[test]
fn the_kit_verifies_an_envelope_securesystemslib_signed() {
    let Some(python) = python() else { return };
    let project = temp_project();
    let root = project.path();
    ed25519_key(root, "test");
    std::fs::create_dir_all(root.join("dist")).unwrap();
    let verify = || {
        run(xtask(root).args([
            "evidence",
            "verify",
            "--key",
            "keys/test.pem.pub",
            "dist/py.json",
        ]))
    };
    for urlsafe in ["False", "True"] {
        let script = PY_SIGN
            .replace("PREDICATE", &format!("{EVIDENCE_PREDICATE:?}"))
            .replace("URLSAFE", urlsafe);
        let signed = py(&python, root, &script);
        let kit_keyid = xtask::attest::keys::PublicKey::from_file(&root.join("keys/test.pem.pub"))
            .unwrap()
            .keyid;
        assert_eq!(signed["keyid"], json!(kit_keyid));
        let o = verify();
        assert_eq!(
            o.status.code(),
            Some(0),
            "urlsafe={urlsafe}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["ok"], json!(true));
        assert_eq!(v["signature_ok"], json!(true));
    }
    // The kit then checks the subjects: a changed file is a mismatch.
    std::fs::write(root.join("out/sample.txt"), "changed\n").unwrap();
    let o = verify();
    assert_eq!(o.status.code(), Some(2));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["signature_ok"], json!(true));
    assert_eq!(v["mismatch"], json!(["out/sample.txt"]));
}
