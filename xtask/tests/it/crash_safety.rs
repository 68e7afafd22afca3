//! Crash safety of `evidence pack`: killed with SIGKILL at any point, or raced
//! by another pack, the `--out` path holds a previous complete bundle or
//! nothing, never a partial one.
#![cfg(unix)]

use crate::common;

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
    // The point of the test: some kills really came inside the bundle's write.
    assert!(
        in_write > 0,
        "no kill came while the bundle was being written"
    );
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

// Gate reports and the golive summary.

const V: &str = "v-crash";

/// Checks that the file at `rel` is absent, one of the complete files `seen`
/// there before, or a complete file of its kind (which is then remembered);
/// never a partial one.
fn whole_or_absent(root: &Path, rel: &str, seen: &mut Vec<(String, Vec<u8>)>) {
    let Ok(bytes) = std::fs::read(root.join(rel)) else {
        return;
    };
    if seen.iter().any(|(r, b)| r == rel && *b == bytes) {
        return;
    }
    let text = std::str::from_utf8(&bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let json = |s: &str| {
        serde_json::from_str::<serde_json::Value>(s)
            .unwrap_or_else(|e| panic!("{rel} is partial ({e}):\n{text}"))
    };
    assert!(text.ends_with('\n'), "{rel} is partial:\n{text}");
    if rel.starts_with("dist/evidence-") {
        let bundle = evidence::read_bundle(root, Path::new(rel))
            .unwrap_or_else(|e| panic!("{rel} is not a whole bundle: {e:#}"));
        let key = Key::new(TEST_KEY, "env:MC_SIGNING_KEY");
        assert_eq!(evidence::sign(&bundle.manifest, &key), bundle.signature);
    } else if rel.ends_with(".jsonl") {
        text.lines().for_each(|l| drop(json(l)));
    } else if rel.ends_with(".json") {
        json(text);
    } else if rel.ends_with(".md") {
        let last = text.lines().last().unwrap_or_default();
        assert!(last.starts_with("Result: **"), "{rel} is partial:\n{text}");
    } else if rel.ends_with(".html") {
        assert!(text.ends_with("</body></html>\n"), "{rel} is partial");
    } else {
        panic!("{rel}: no completeness check for this kind of file");
    }
    seen.push((rel.to_string(), bytes));
}

/// The names a killed run can leave beside its outputs: `write_atomic`'s
/// temporary files and the decision log being written.
fn leftovers(root: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for dir in ["out", "dist"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") || name.ends_with(".partial") {
                names.push(format!("{dir}/{name}"));
            }
        }
    }
    names.sort();
    names
}

/// Kills `cmd` with SIGKILL after `after` (or lets it finish first); returns
/// whether it had finished, and whether the kill left a new temporary or
/// partial file (it came in the middle of a write).
fn kill_after(cmd: &mut std::process::Command, root: &Path, after: Duration) -> (bool, bool) {
    let before = leftovers(root);
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    let after = leftovers(root);
    let mid_write = after.iter().any(|l| !before.contains(l));
    // A process ended by a signal has no exit code.
    (status.code().is_some(), mid_write)
}

/// Kills `cmd` with SIGKILL as soon as a new temporary or partial file
/// appears (giving up after `limit`); returns whether the kill came inside
/// that write: the file is still there, not yet renamed into place.
fn kill_in_write(cmd: &mut std::process::Command, root: &Path, limit: Duration) -> bool {
    let before = leftovers(root);
    let new = |root: &Path| leftovers(root).into_iter().any(|l| !before.contains(&l));
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while !new(root) && Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    status.code().is_none() && new(root)
}

#[test]
fn sigkill_during_gates_leaves_the_previous_report_or_nothing() {
    const KILLS: u32 = 40;
    let _serial = serial();
    let test_start = Instant::now();
    let project = common::temp_project();
    let root = project.path();
    let stages = ["stage", "canary_20", "canary_50", "production"];
    let gates = |i: u32| {
        let stage = stages[i as usize % stages.len()];
        let mut cmd = xtask(root);
        cmd.env("MC_VERSION", V).args([
            "gates",
            "--stage",
            stage,
            "--seed",
            &i.to_string(),
            "--report",
            &format!("out/gates-{stage}-{V}.json"),
        ]);
        // Every third run fails its gate: the report is written all the same.
        if i.is_multiple_of(3) {
            cmd.args(["--degrade", "GraphQL.reads.p95_ms=+300"]);
        }
        cmd
    };
    let started = Instant::now();
    let o = run(&mut gates(1));
    let full = started.elapsed();
    assert!(o.status.success(), "{}", stderr(&o));

    let mut seen = Vec::new();
    let (mut finished, mut mid_write) = (0, 0);
    for i in 0..KILLS {
        let after = full.mul_f64(1.2 * f64::from(i) / f64::from(KILLS));
        let (done, mid) = kill_after(&mut gates(i), root, after);
        finished += u32::from(done);
        mid_write += u32::from(mid);
        for stage in stages {
            whole_or_absent(root, &format!("out/gates-{stage}-{V}.json"), &mut seen);
        }
    }
    // And kills aimed at the report's write, so that some surely land inside one.
    let mut in_write = 0;
    for i in 0..8 {
        in_write += u32::from(kill_in_write(&mut gates(i), root, full * 20));
        for stage in stages {
            whole_or_absent(root, &format!("out/gates-{stage}-{V}.json"), &mut seen);
        }
    }
    assert!(
        mid_write + in_write > 0,
        "no kill came while a report was being written"
    );
    // A whole run of each stage clears what the kills left beside its
    // report, so that a pack of `out/` takes no partial file.
    let left = leftovers(root).len();
    for (i, stage) in stages.iter().enumerate() {
        let o = run(&mut gates(i as u32 * 3 + 1));
        assert!(o.status.success(), "{stage}: {}", stderr(&o));
    }
    assert_eq!(leftovers(root), Vec::<String>::new());
    for stage in stages {
        let rel = format!("out/gates-{stage}-{V}.json");
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.join(&rel)).unwrap()).unwrap();
        assert_eq!(report["stage"], stage, "{rel}");
    }
    println!(
        "{KILLS} kills over a {full:?} gates run: {mid_write} while a report was being \
         written, {finished} after it finished; 8 aimed at a write, {in_write} inside it; \
         {left} temporary files there before the last runs removed them; {:?} in all",
        test_start.elapsed()
    );
}

/// A project for golive: the temp project with the real `Cargo.lock`.
fn golive_project() -> tempfile::TempDir {
    let p = common::temp_project();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"),
        p.path().join("Cargo.lock"),
    )
    .unwrap();
    p
}

fn golive(root: &Path) -> std::process::Command {
    let mut cmd = xtask(root);
    cmd.env("CI", "true")
        .args(["golive", "--version", V, "--seed", "7"]);
    cmd
}

/// The paths a bundle lists.
fn bundle_paths(root: &Path) -> Vec<String> {
    let rel = format!("dist/evidence-{V}.json");
    let bundle = evidence::read_bundle(root, Path::new(&rel)).unwrap();
    bundle
        .manifest
        .artifacts
        .into_iter()
        .map(|a| a.path)
        .collect()
}

#[test]
fn sigkill_during_golive_leaves_previous_reports_or_nothing() {
    const KILLS: u32 = 16;
    let _serial = serial();
    let test_start = Instant::now();
    let project = golive_project();
    let root = project.path();
    // Two whole runs; the quicker (the first is often slowed by a cold
    // cache) sets the range of kill times.
    let mut full = Duration::MAX;
    for _ in 0..2 {
        let started = Instant::now();
        let o = run(&mut golive(root));
        full = full.min(started.elapsed());
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let reports = common::golive_outputs(V);
    let mut seen = Vec::new();
    for rel in &reports {
        assert!(root.join(rel).is_file(), "{rel}");
        whole_or_absent(root, rel, &mut seen);
    }

    let (mut finished, mut left) = (0, 0);
    for i in 0..KILLS {
        // Spread over the run (build facts, gateway load, gates, pack,
        // reports), and a little past its end.
        let after = full.mul_f64(1.1 * f64::from(i + 1) / f64::from(KILLS));
        let (done, _) = kill_after(&mut golive(root), root, after);
        finished += u32::from(done);
        left += u32::from(!leftovers(root).is_empty());
        for rel in &reports {
            whole_or_absent(root, rel, &mut seen);
        }
    }
    // The point of the test: some kills really came inside a write.
    assert!(
        left > 0,
        "no kill left a temporary file or the partial decision log"
    );

    // The next whole run clears what the kills left, packs none of it, and
    // its bundle verifies.
    let o = run(&mut golive(root));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(leftovers(root), Vec::<String>::new());
    let packed = bundle_paths(root);
    assert!(
        packed
            .iter()
            .all(|p| !p.ends_with(".tmp") && !p.ends_with(".partial")),
        "{packed:?}"
    );
    verifies(root, &format!("dist/evidence-{V}.json"));
    println!(
        "{KILLS} kills over a {full:?} golive: {left} left a temporary file or the partial \
         decision log (killed mid-write), {finished} after it finished; {:?} in all",
        test_start.elapsed()
    );
}

#[test]
fn killed_golive_leftovers_are_removed_not_packed() {
    // What a golive killed mid-run leaves: the decision log it was writing
    // and `write_atomic` temporary files of its reports. A file of the user's
    // that merely looks like one is evidence, and kept.
    let project = golive_project();
    let root = project.path();
    let own = [
        format!("out/a2a-decisions-{V}.jsonl.partial"),
        format!("out/.build-{V}.json.Ab12Cd.tmp"),
        format!("out/.gates-canary_50-{V}.json.x9Y8z7.tmp"),
        format!("out/.a2a-probe-{V}.json.000000.tmp"),
        format!("dist/.golive-{V}.html.QwErTy.tmp"),
    ];
    let users = ["out/.notes.json.Ab12Cd.tmp", "out/decisions.jsonl.partial"];
    // With an external gateway that is down (the gateway step never touches
    // the decision log), and with the in-process one.
    for a2a_url in ["http://127.0.0.1:1", ""] {
        for rel in own.iter().map(String::as_str).chain(users) {
            std::fs::create_dir_all(root.join(rel).parent().unwrap()).unwrap();
            std::fs::write(root.join(rel), "{\"half").unwrap();
        }
        let o = run(golive(root).env("A2A_URL", a2a_url));
        let want = if a2a_url.is_empty() { 0 } else { 3 };
        assert_eq!(o.status.code(), Some(want), "{a2a_url}: {}", stderr(&o));
        let packed = bundle_paths(root);
        for rel in &own {
            assert!(!root.join(rel).exists(), "{a2a_url}: {rel} is removed");
            assert!(!packed.contains(rel), "{a2a_url}: {rel} is packed");
        }
        for rel in users {
            assert!(packed.iter().any(|p| p == rel), "{a2a_url}: {rel} is kept");
        }
        verifies(root, &format!("dist/evidence-{V}.json"));
    }
}

#[test]
fn killed_gates_leftover_temp_file_is_removed_by_the_next_run() {
    // `gates --report out/r.json` killed while writing leaves
    // `out/.r.json.XXXXXX.tmp`; the next run for that report removes it, so
    // a pack of `out/` does not take it for evidence.
    let project = common::temp_project();
    let root = project.path();
    let stale = "out/.r.json.Ab12Cd.tmp";
    let users = ["out/.notes.json.Ab12Cd.tmp", "out/.r.json.bak.tmp"];
    for rel in std::iter::once(stale).chain(users) {
        std::fs::write(root.join(rel), "{\"half").unwrap();
    }
    let o = run(xtask(root).args(["gates", "--stage", "stage", "--report", "out/r.json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!root.join(stale).exists(), "{stale} is removed");
    for rel in users {
        assert!(root.join(rel).exists(), "{rel} is the user's, and kept");
    }
    let o = run(xtask(root).args(["evidence", "pack", "--out", "dist/b.json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    verifies(root, "dist/b.json");
}
