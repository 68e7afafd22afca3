//! Fuzzes bundle parsing and verification: any bytes given to
//! `parse_bundle` either fail with an error or give a bundle that `verify`
//! judges without panicking, hanging or reading outside a small project made
//! once per process (with the awkward files a real `out/` can hold: a nested
//! file, a symbolic link inside, one that escapes, a FIFO and a directory).
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use xtask::evidence::{self, Key};

fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let out = dir.join("out");
        std::fs::create_dir_all(out.join("sub/dir")).unwrap();
        std::fs::write(out.join("sample.txt"), "hello evidence\n").unwrap();
        std::fs::write(out.join("sub/a.txt"), "a").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/passwd", out.join("escape")).unwrap();
            std::os::unix::fs::symlink("sample.txt", out.join("inner")).unwrap();
            let fifo = out.join("fifo");
            let made = std::process::Command::new("mkfifo").arg(&fifo).status();
            assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", fifo.display());
        }
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(bundle) = evidence::parse_bundle(data) else {
        return;
    };
    // What parses must survive a round trip unchanged (the canonical form
    // depends on it).
    let again = serde_json::to_vec(&bundle).expect("a bundle serialises");
    let reparsed = evidence::parse_bundle(&again).expect("a serialised bundle parses");
    assert_eq!(reparsed, bundle);

    let key = Key::new("fuzz-key", "env:MC_SIGNING_KEY");
    for strict in [false, true] {
        let verdict = evidence::verify(root(), &bundle, Path::new("dist/b.json"), &key, strict);
        // A random signature never matches, so nothing the fuzzer makes is ok.
        assert_eq!(verdict.ok, verdict.reasons.is_empty());
        if verdict.ok {
            assert!(verdict.signature_ok);
        }
    }
});
