//! Faults while packing and verifying: unreadable files, a file that changes
//! while it is hashed, a vanished `out/`, a full disk. Each is one clear line
//! naming the file, and what was written before stays intact.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{run, run_within, stderr, stdout, temp_project, xtask};
use xtask::evidence;

/// Packs `dist/b.json` and returns its bytes: the "previous output" that a
/// failing run must leave alone.
fn previous_bundle(root: &Path) -> Vec<u8> {
    let o = run(xtask(root).args(["evidence", "pack", "--out", "dist/b.json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::read(root.join("dist/b.json")).unwrap()
}

/// Checks that `o` failed with `code` and exactly one stderr line starting
/// `xtask: ` and containing every one of `parts`.
#[track_caller]
fn one_line_error(o: &Output, code: i32, parts: &[&str]) {
    let line = common::assert_one_line_error(o, "xtask", code, "");
    for p in parts {
        assert!(line.contains(p), "{p:?} in {line}");
    }
}

/// No temporary file is left beside the bundle.
fn no_temp_files(dir: &Path) {
    let tmp: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(
        tmp.is_empty(),
        "temporary files left in {}: {tmp:?}",
        dir.display()
    );
}

/// Runs the xtask as an unprivileged user when the tests run as root, since
/// root reads files whatever their mode. Returns `None` (and says why) when
/// that is impossible.
#[cfg(unix)]
fn unprivileged(root: &Path) -> Option<Command> {
    use std::os::unix::process::CommandExt;
    let mut cmd = xtask(root);
    if common::is_root() {
        const NOBODY: u32 = 65534;
        for entry in walk(root) {
            std::os::unix::fs::lchown(&entry, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        cmd.uid(NOBODY).gid(NOBODY);
        // Can the binary run as that user at all (a path it cannot search)?
        let probe = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("--help")
            .uid(NOBODY)
            .gid(NOBODY)
            .output();
        match probe {
            Ok(o) if o.status.success() => {}
            other => {
                common::skip(&format!(
                    "running as root and cannot drop to uid {NOBODY}: {other:?}"
                ));
                return None;
            }
        }
    }
    Some(cmd)
}

#[cfg(unix)]
fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut all = vec![root.to_path_buf()];
    let mut i = 0;
    while i < all.len() {
        if all[i].is_dir() && !all[i].is_symlink() {
            for e in std::fs::read_dir(&all[i]).unwrap() {
                all.push(e.unwrap().path());
            }
        }
        i += 1;
    }
    all
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[test]
fn unreadable_file_fails_pack_naming_it_and_keeps_the_previous_bundle() {
    let project = temp_project();
    let root = project.path();
    let before = previous_bundle(root);
    std::fs::write(root.join("out/secret.txt"), "s").unwrap();
    let Some(mut cmd) = unprivileged(root) else {
        return;
    };
    chmod(&root.join("out/secret.txt"), 0o000);
    let o = run(cmd.args(["evidence", "pack", "--out", "dist/b.json"]));
    one_line_error(&o, 1, &["cannot hash out/secret.txt", "Permission denied"]);
    assert_eq!(std::fs::read(root.join("dist/b.json")).unwrap(), before);
    no_temp_files(&root.join("dist"));
}

#[cfg(unix)]
#[test]
fn unreadable_directory_fails_pack_naming_it() {
    let project = temp_project();
    let root = project.path();
    let before = previous_bundle(root);
    std::fs::create_dir(root.join("out/locked")).unwrap();
    std::fs::write(root.join("out/locked/a.txt"), "a").unwrap();
    let Some(mut cmd) = unprivileged(root) else {
        return;
    };
    chmod(&root.join("out/locked"), 0o000);
    let o = run(cmd.args(["evidence", "pack", "--out", "dist/b.json"]));
    chmod(&root.join("out/locked"), 0o755);
    one_line_error(
        &o,
        1,
        &["cannot read directory out/locked", "Permission denied"],
    );
    assert_eq!(std::fs::read(root.join("dist/b.json")).unwrap(), before);
}

#[cfg(unix)]
#[test]
fn unreadable_listed_file_is_rejected_by_verify_with_its_name() {
    let project = temp_project();
    let root = project.path();
    previous_bundle(root);
    let Some(mut cmd) = unprivileged(root) else {
        return;
    };
    chmod(&root.join("out/sample.txt"), 0o000);
    let o = run(cmd.args(["evidence", "verify", "dist/b.json"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["rejected"][0]["path"], "out/sample.txt");
    let reason = v["rejected"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("Permission denied"), "{reason}");
}

#[cfg(unix)]
#[test]
fn fifo_in_out_is_skipped_by_pack_without_blocking() {
    let project = temp_project();
    let root = project.path();
    let made = Command::new("mkfifo")
        .arg(root.join("out/pipe"))
        .status()
        .unwrap();
    assert!(made.success());
    let o = run_within(
        xtask(root).args(["evidence", "pack", "--out", "dist/b.json"]),
        Duration::from_secs(20),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let bundle = evidence::read_bundle(root, std::path::Path::new("dist/b.json")).unwrap();
    let paths: Vec<_> = bundle
        .manifest
        .artifacts
        .iter()
        .map(|a| a.path.as_str())
        .collect();
    assert_eq!(paths, ["out/sample.txt"]);
}

/// Hashes a 12-byte file 4 bytes at a time, doing `change` to it after the
/// first chunk; returns the error.
fn hash_while(change: impl FnOnce(&Path)) -> std::io::Error {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.txt");
    std::fs::write(&path, "0123456789ab").unwrap();
    let mut change = Some(change);
    let mut buf = [0u8; 4];
    let got = evidence::hash_file_observed(&path, &mut buf, &mut |done| {
        if done == 4 {
            (change.take().unwrap())(&path);
        }
    });
    got.expect_err("a file changed while hashed is an error")
}

#[test]
fn file_grown_while_hashed_is_an_error() {
    let e = hash_while(|p| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
        f.write_all(b"more").unwrap();
    });
    assert!(
        e.to_string()
            .contains("the file changed while it was being hashed"),
        "{e}"
    );
}

#[test]
fn file_truncated_while_hashed_is_an_error() {
    let e = hash_while(|p| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .unwrap()
            .set_len(6)
            .unwrap();
    });
    assert!(
        e.to_string().contains("changed while it was being hashed"),
        "{e}"
    );
}

#[test]
fn file_rewritten_in_place_while_hashed_is_an_error() {
    // Same size, new content: only the modification time tells.
    let e = hash_while(|p| {
        use std::io::{Seek, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        f.seek(std::io::SeekFrom::Start(8)).unwrap();
        f.write_all(b"XXXX").unwrap();
        let later = std::time::SystemTime::now() + Duration::from_secs(5);
        f.set_modified(later).unwrap();
    });
    assert!(
        e.to_string().contains("changed while it was being hashed"),
        "{e}"
    );
}

#[test]
fn file_left_alone_while_hashed_is_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.txt");
    std::fs::write(&path, "hello evidence\n").unwrap();
    let mut chunks = 0;
    let (sha, size) =
        evidence::hash_file_observed(&path, &mut [0u8; 4], &mut |_| chunks += 1).unwrap();
    assert_eq!((size, chunks), (15, 4));
    let whole = evidence::hash_file(&path, &mut [0u8; 1 << 16]).unwrap();
    assert_eq!(whole, (sha, 15));
}

/// The same check through the real binary: a file whose content does not
/// stay what `stat` said while it is read. A file of /proc, bind-mounted
/// into `out/`, is such a file every time (its size is 0, its read is not).
/// Needs the right to mount; says so and passes otherwise (the tests above
/// cover the check itself).
#[cfg(target_os = "linux")]
#[test]
fn file_changing_during_pack_is_a_one_line_error_naming_it() {
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let project = temp_project();
    let root = project.path();
    let before = previous_bundle(root);
    let target = root.join("out/version");
    std::fs::write(&target, "").unwrap();
    let mounted = Command::new("mount")
        .args(["--bind", "/proc/version"])
        .arg(&target)
        .output();
    match &mounted {
        Ok(o) if o.status.success() => {}
        other => {
            common::skip(&format!("cannot bind-mount a /proc file here: {other:?}"));
            return;
        }
    }
    let _unmount = Unmount(target);
    let o = run(xtask(root).args(["evidence", "pack", "--out", "dist/b.json"]));
    one_line_error(
        &o,
        1,
        &[
            "cannot hash out/version",
            "the file changed while it was being hashed",
        ],
    );
    assert_eq!(std::fs::read(root.join("dist/b.json")).unwrap(), before);
}

#[test]
fn vanished_out_fails_pack_naming_it_and_keeps_the_previous_bundle() {
    let project = temp_project();
    let root = project.path();
    let before = previous_bundle(root);
    std::fs::remove_dir_all(root.join("out")).unwrap();
    let o = run(xtask(root).args(["evidence", "pack", "--out", "dist/b.json"]));
    one_line_error(
        &o,
        1,
        &["cannot read directory out", "No such file or directory"],
    );
    assert_eq!(std::fs::read(root.join("dist/b.json")).unwrap(), before);
    no_temp_files(&root.join("dist"));

    // Verify says what is gone, and is not ok.
    let o = run(xtask(root).args(["evidence", "verify", "dist/b.json"]));
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["missing"], serde_json::json!(["out/sample.txt"]));
    assert_eq!(v["ok"], false);
}

/// A project with 200 files: its bundle is about 40 kB.
fn project_with_files(root: &Path) {
    for i in 0..200 {
        std::fs::write(root.join(format!("out/file-{i:04}.txt")), format!("{i}")).unwrap();
    }
}

/// A full disk, for real: the project lives on a small tmpfs that is then
/// filled up. Needs the right to mount (root or CAP_SYS_ADMIN); says so and
/// passes otherwise (the RLIMIT_FSIZE test below covers the same path).
#[cfg(target_os = "linux")]
#[test]
fn full_disk_fails_pack_naming_the_bundle_and_keeps_the_previous_one() {
    struct Mount(std::path::PathBuf);
    impl Drop for Mount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(dir.path())
        .output();
    match &mounted {
        Ok(o) if o.status.success() => {}
        other => {
            common::skip(&format!("cannot mount a tmpfs here: {other:?}"));
            return;
        }
    }
    let _mount = Mount(dir.path().to_path_buf());
    let root = dir.path();
    std::fs::create_dir_all(root.join("out")).unwrap();
    std::fs::write(root.join("out/sample.txt"), "hello evidence\n").unwrap();
    let before = previous_bundle(root);
    project_with_files(root);
    // Fill what is left of the disk.
    let mut filler = std::fs::File::create(root.join("filler")).unwrap();
    let block = vec![0u8; 4096];
    loop {
        use std::io::Write;
        if filler.write_all(&block).is_err() {
            break;
        }
    }
    let o = run(xtask(root).args(["evidence", "pack", "--out", "dist/b.json"]));
    one_line_error(
        &o,
        1,
        &["cannot write ", "dist/b.json: No space left on device"],
    );
    assert_eq!(std::fs::read(root.join("dist/b.json")).unwrap(), before);
    no_temp_files(&root.join("dist"));
}

/// A write that the file system refuses half way, without privileges: the
/// xtask runs under `ulimit -f` (RLIMIT_FSIZE) with SIGXFSZ ignored, so the
/// write fails with EFBIG ("File too large") as on a full disk.
#[cfg(unix)]
#[test]
fn write_refused_half_way_fails_pack_naming_the_bundle_and_keeps_the_previous_one() {
    let project = temp_project();
    let root = project.path();
    let before = previous_bundle(root);
    project_with_files(root);
    let cmd = xtask(root);
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 16; exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_xtask"))
        .args(["evidence", "pack", "--out", "dist/b.json"])
        .current_dir(root);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let o = run(&mut sh);
    one_line_error(&o, 1, &["cannot write ", "dist/b.json: File too large"]);
    assert_eq!(std::fs::read(root.join("dist/b.json")).unwrap(), before);
    no_temp_files(&root.join("dist"));
}
