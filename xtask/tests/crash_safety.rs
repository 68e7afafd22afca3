//! Crash safety of `evidence pack`: killed with SIGKILL at any point, or raced
//! by another pack, the `--out` path holds a previous complete bundle or
//! nothing, never a partial one.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{run, stderr, xtask, TEST_KEY};
use xtask::evidence::{self, Key};

/// A project whose `out/` holds `files` small files with long paths (about
/// 1,850 characters, eight directories deep), so that the bundle is large
/// (about 1.9 kB of JSON per file) while making the files and packing them
/// stays quick.
fn big_project(files: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let long = "of-the-release-rehearsal-".repeat(8);
    for i in 0..files {
        let mut sub = dir.path().join(format!("out/batch-{:03}-{long}", i / 100));
        for _ in 0..7 {
            sub.push(&long);
        }
        if i % 100 == 0 {
            std::fs::create_dir_all(&sub).unwrap();
        }
        let name = format!("gate-report-{i:06}-{long}.json");
        std::fs::write(sub.join(name), format!("{{\"n\": {i}}}\n")).unwrap();
    }
    dir
}

/// The tests here time their kills against a pack's duration: run them one at
/// a time so that they do not slow each other down.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Parses the bundle at `rel` and checks that it is whole: its signature
/// matches and it lists all `files`. Returns its version.
fn whole_bundle_version(root: &Path, rel: &str, files: usize) -> String {
    let bundle = evidence::read_bundle(root, std::path::Path::new(rel))
        .unwrap_or_else(|e| panic!("{rel} is not a whole bundle: {e:#}"));
    let key = Key::new(TEST_KEY, "env:MC_SIGNING_KEY");
    assert_eq!(
        evidence::sign(&bundle.manifest, &key),
        bundle.signature,
        "{rel}"
    );
    assert_eq!(bundle.manifest.artifacts.len(), files, "{rel}");
    bundle.manifest.version
}

/// The temporary files in `dir`.
fn tmp_files(dir: &Path) -> Vec<std::ffi::OsString> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    names.sort();
    names
}

/// Checks that the bundle at `rel` verifies against the files under `root`.
fn verifies(root: &Path, rel: &str) {
    let bundle = evidence::read_bundle(root, std::path::Path::new(rel)).unwrap();
    let key = Key::new(TEST_KEY, "env:MC_SIGNING_KEY");
    let verdict = evidence::verify(root, &bundle, Path::new(rel), &key, false);
    assert!(verdict.ok, "{rel} does not verify: {:?}", verdict.reasons);
}

#[test]
fn sigkill_during_pack_leaves_the_previous_bundle_or_nothing() {
    const KILLS: u32 = 20;
    const FILES: usize = 600;
    let _serial = serial();
    let test_start = Instant::now();
    let project = big_project(FILES);
    let root = project.path();
    let made = test_start.elapsed();

    // A first, complete bundle; its duration sets the range of kill times.
    let started = Instant::now();
    let o = run(xtask(root).env("MC_VERSION", "v-first").args([
        "evidence",
        "pack",
        "--out",
        "dist/b.json",
    ]));
    let full = started.elapsed();
    assert!(o.status.success(), "{}", stderr(&o));
    let size = std::fs::metadata(root.join("dist/b.json")).unwrap().len();
    assert!(size > 1_000_000, "the bundle is large ({size} bytes)");
    let mut last = std::fs::read(root.join("dist/b.json")).unwrap();

    let (mut completed, mut in_write) = (0, 0);
    for i in 0..KILLS {
        let version = format!("v-{i}");
        // Every third kill writes a fresh bundle, which has no previous version.
        let fresh = format!("dist/fresh-{i}.json");
        let out = if i % 3 == 0 {
            fresh.as_str()
        } else {
            "dist/b.json"
        };
        let old_tmp = tmp_files(&root.join("dist"));
        let mut child = xtask(root)
            .env("MC_VERSION", &version)
            .args(["evidence", "pack", "--out", out])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if i % 2 == 0 {
            // Anywhere in the run: listing, hashing or writing.
            std::thread::sleep(full.mul_f64(f64::from(i) / f64::from(KILLS)));
        } else {
            // While the bundle is being written: as soon as its temporary
            // file appears, then a little later each time.
            let deadline = Instant::now() + full * 3;
            while tmp_files(&root.join("dist")) == old_tmp && Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            std::thread::sleep(Duration::from_micros(u64::from(i / 2) * 400));
        }
        if child.try_wait().unwrap().is_none() && tmp_files(&root.join("dist")) != old_tmp {
            in_write += 1;
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        if status.success() {
            completed += 1;
        }

        if out == fresh {
            if root.join(&fresh).exists() {
                assert_eq!(whole_bundle_version(root, &fresh, FILES), version);
                std::fs::remove_file(root.join(&fresh)).unwrap();
            }
            continue;
        }
        let now = std::fs::read(root.join("dist/b.json")).expect("the previous bundle is kept");
        // Unchanged bytes are the previous bundle, checked when it appeared.
        if now != last {
            let v = whole_bundle_version(root, "dist/b.json", FILES);
            assert_eq!(v, version, "the bundle is the previous one or this pack's");
            last = now;
        }
    }
    verifies(root, "dist/b.json");
    let leftovers = tmp_files(&root.join("dist")).len();
    println!(
        "{KILLS} kills over a {full:?} pack: {in_write} while writing the bundle, \
         {completed} after it finished; {leftovers} temporary files left; \
         {made:?} to make the project, {:?} in all",
        test_start.elapsed()
    );
}

#[test]
fn racing_packs_leave_one_whole_bundle() {
    let _serial = serial();
    let project = big_project(200);
    let root = project.path();
    for out in ["dist/b.json", "out/b.json"] {
        for round in 0..3 {
            let children: Vec<_> = ["v-a", "v-b"]
                .iter()
                .map(|v| {
                    xtask(root)
                        .env("MC_VERSION", v)
                        .args(["evidence", "pack", "--out", out])
                        .stdout(std::process::Stdio::null())
                        .spawn()
                        .unwrap()
                })
                .collect();
            for mut c in children {
                let status = c.wait().unwrap();
                assert!(status.success(), "{out} round {round}: {status:?}");
            }
            let v = whole_bundle_version(root, out, 200);
            assert!(v == "v-a" || v == "v-b", "{out}: {v}");
            verifies(root, out);
            let dir = root.join(Path::new(out).parent().unwrap());
            let tmp: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| n.to_string_lossy().ends_with(".tmp"))
                .collect();
            assert!(tmp.is_empty(), "no temporary file is left: {tmp:?}");
        }
    }
}

#[test]
fn killed_pack_leftover_temp_file_is_not_evidence() {
    // A pack killed while writing `out/b.json` leaves `out/.b.json.XXXXXX.tmp`;
    // the next pack and verify of that bundle must not count it.
    let project = big_project(10);
    let root = project.path();
    std::fs::write(root.join("out/.b.json.Ab12Cd.tmp"), "{\"manifest\": {").unwrap();
    let o = run(xtask(root).args(["evidence", "pack", "--out", "out/b.json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(xtask(root).args(["evidence", "verify", "out/b.json"]));
    assert_eq!(o.status.code(), Some(0), "{}", common::stdout(&o));
}
