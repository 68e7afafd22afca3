//! Regression tests for bugs found in `evidence` by the hardening work, each
//! named after what it fixes.

use crate::common;

use std::time::Duration;

use common::{run, run_within, stderr, stdout, temp_project, xtask};

fn verdict(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stderr(o)))
}

/// `verify` opened every listed path to hash it; a FIFO listed in a manifest
/// (or put where a listed file was) made it block forever.
#[cfg(unix)]
#[test]
fn verify_does_not_hang_on_a_fifo_listed_in_the_manifest() {
    let project = temp_project();
    let root = project.path();
    let o = run(xtask(root).args(["evidence", "pack", "--out", "dist/b.json"]));
    assert!(o.status.success());
    std::fs::remove_file(root.join("out/sample.txt")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(root.join("out/sample.txt"))
        .status()
        .unwrap();
    assert!(made.success());
    let o = run_within(
        xtask(root).args(["evidence", "verify", "dist/b.json"]),
        Duration::from_secs(20),
    );
    assert_eq!(o.status.code(), Some(2));
    let v = verdict(&o);
    assert_eq!(v["rejected"][0]["path"], "out/sample.txt");
    assert_eq!(
        v["rejected"][0]["reason"],
        "cannot read: not a regular file"
    );
}

/// `pack` followed a symbolic link at `out/` (reading wherever it pointed,
/// even outside the project) and wrote a bundle that `verify`, which rejects
/// links, could never accept.
#[cfg(unix)]
#[test]
fn pack_refuses_a_symlinked_packed_directory() {
    let project = temp_project();
    let elsewhere = tempfile::tempdir().unwrap();
    let root = project.path();
    std::fs::write(elsewhere.path().join("secret.txt"), "s").unwrap();
    std::fs::create_dir(root.join("out/sub")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), root.join("linked")).unwrap();
    for dir in ["linked", "linked/."] {
        let o = run(xtask(root).args(["evidence", "pack", "--dir", dir, "--out", "dist/b.json"]));
        common::assert_one_line_error(&o, "xtask", 1, "linked is a symbolic link");
    }
    std::os::unix::fs::symlink(elsewhere.path(), root.join("out/sub/deeper")).unwrap();
    std::fs::rename(root.join("out/sub"), root.join("real-sub")).unwrap();
    std::os::unix::fs::symlink("../real-sub", root.join("out/sub")).unwrap();
    let o = run(xtask(root).args([
        "evidence",
        "pack",
        "--dir",
        "out/sub",
        "--out",
        "dist/b.json",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("out/sub is a symbolic link"),
        "{}",
        stderr(&o)
    );
    assert!(!root.join("dist/b.json").exists());
}

/// `pack` listed any file name, but `verify` splits paths on `\` too and
/// rejects `..`, `.` and empty parts: a file named `..\x` made a bundle that
/// could never verify.
#[cfg(unix)]
#[test]
fn pack_refuses_file_names_verify_would_reject() {
    let project = temp_project();
    let root = project.path();
    std::fs::write(root.join("out/..\\x"), "x").unwrap();
    let o = run(xtask(root).args(["evidence", "pack", "--out", "dist/b.json"]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("out/..\\x: verify would reject this file name"),
        "{err}"
    );
    assert!(err.contains("rename it"), "{err}");
    assert!(!root.join("dist/b.json").exists());
}

/// A bundle of an empty directory verified as ok after the directory itself
/// was deleted: a missing packed directory was silently ignored.
#[test]
fn verify_is_not_ok_when_the_packed_directory_is_gone() {
    let project = temp_project();
    let root = project.path();
    std::fs::create_dir(root.join("empty")).unwrap();
    let o = run(xtask(root).args(["evidence", "pack", "--dir", "empty", "--out", "dist/b.json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(xtask(root).args(["evidence", "verify", "dist/b.json"]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    std::fs::remove_dir(root.join("empty")).unwrap();
    let o = run(xtask(root).args(["evidence", "verify", "dist/b.json"]));
    assert_eq!(o.status.code(), Some(2));
    let v = verdict(&o);
    let reasons = v["reasons"].to_string();
    assert!(reasons.contains("cannot list empty"), "{reasons}");
}

/// A bundle written through a linked directory (`--out link/b.json`, `link`
/// pointing at `out`) was not recognised as the bundle itself: the next pack
/// listed the previous bundle as evidence, then overwrote it, so the new
/// bundle never verified.
#[cfg(unix)]
#[test]
fn bundle_written_through_a_symlinked_directory_is_not_its_own_artifact() {
    let project = temp_project();
    let root = project.path();
    std::os::unix::fs::symlink("out", root.join("link")).unwrap();
    for _ in 0..2 {
        let o = run(xtask(root).args(["evidence", "pack", "--out", "link/b.json"]));
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = run(xtask(root).args(["evidence", "verify", "link/b.json"]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = run(xtask(root).args(["evidence", "verify", "out/b.json"]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

/// Every file whose name started like the bundle's temporary files and ended
/// in `.tmp` was skipped: `out/.b.json.anything.tmp` could be added to the
/// packed directory without `verify` noticing.
#[test]
fn file_named_almost_like_a_temp_file_is_evidence() {
    let project = temp_project();
    let root = project.path();
    let o = run(xtask(root).args(["evidence", "pack", "--out", "out/b.json"]));
    assert!(o.status.success());
    std::fs::write(root.join("out/.b.json.added-later.tmp"), "x").unwrap();
    let o = run(xtask(root).args(["evidence", "verify", "out/b.json"]));
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        verdict(&o)["extra"],
        serde_json::json!(["out/.b.json.added-later.tmp"])
    );

    // Packed, it is listed like any other file.
    let o = run(xtask(root).args(["evidence", "pack", "--out", "out/b.json"]));
    assert!(o.status.success());
    let o = run(xtask(root).args(["evidence", "verify", "out/b.json"]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

/// `verify` and the key file were read whole whatever their size: an endless
/// file (`/dev/zero`, a FIFO fed forever) or a huge one ran the process out of
/// memory. Both are read up to a documented limit now.
#[cfg(unix)]
#[test]
fn endless_bundle_or_key_file_is_refused_not_read_into_memory() {
    let project = temp_project();
    let root = project.path();
    let o = run_within(
        xtask(root).args(["evidence", "verify", "/dev/zero"]),
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "xtask: cannot read /dev/zero: larger than 256 MiB\n"
    );

    let o = run_within(
        xtask(root)
            .env_remove("MC_SIGNING_KEY")
            .env("MC_SIGNING_KEY_FILE", "/dev/zero")
            .args(["evidence", "pack", "--out", "dist/b.json"]),
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("cannot read the signing key file /dev/zero"),
        "{err}"
    );
    assert!(err.contains("larger than 1 MiB"), "{err}");
}
