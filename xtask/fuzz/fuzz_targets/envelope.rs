//! Fuzzes DSSE envelope parsing and opening, and Statement parsing: any bytes
//! either fail with an error or give an envelope that `open` judges (with a
//! fixed key; a random signature never verifies) and, for the Statement
//! parser, subjects that the bundle's file checks judge without panicking,
//! hanging or reading outside a small project made once per process.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use xtask::attest::{dsse, keys, statement};
use xtask::evidence::{self, Artifact};

fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let out = dir.join("out");
        std::fs::create_dir_all(out.join("sub")).unwrap();
        std::fs::write(out.join("sample.txt"), "hello evidence\n").unwrap();
        std::fs::write(out.join("sub/a.txt"), "a").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/passwd", out.join("escape")).unwrap();
        dir
    })
}

fn key() -> &'static keys::PublicKey {
    static KEY: OnceLock<keys::PublicKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let signing = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        keys::PublicKey::new(signing.verifying_key())
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = xtask::attest::is_envelope(data);
    if let Ok(env) = dsse::parse(data) {
        // What parses survives a round trip unchanged.
        let again = serde_json::to_vec(&env).expect("an envelope serialises");
        assert_eq!(
            dsse::parse(&again).expect("a serialised envelope parses"),
            env
        );
        match dsse::open(&env, key()) {
            Ok(_) => panic!("a fuzzed signature verified"),
            Err(dsse::Refused::Malformed(_) | dsse::Refused::NotSigned(_)) => {}
        }
        if let Ok(verdict) = xtask::attest::verify(root(), &env, Path::new("dist/e.json"), key()) {
            assert!(!verdict.ok);
        }
    }
    // The Statement parser on its own: no signature stands in its way here.
    if let Ok(st) = statement::parse(data) {
        let artifacts: Vec<Artifact> = st
            .subjects
            .into_iter()
            .map(|s| Artifact {
                path: s.name,
                sha256: s.digest.sha256,
                size: None,
            })
            .collect();
        let files = evidence::check_files(root(), &st.dir, &artifacts, Path::new("dist/e.json"));
        assert_eq!(
            files.reasons.is_empty(),
            files.missing.is_empty()
                && files.mismatch.is_empty()
                && files.extra.is_empty()
                && files.rejected.is_empty()
        );
    }
});
