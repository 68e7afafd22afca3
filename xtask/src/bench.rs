//! `cargo xtask bench` (issue 7): measures, in one run on this machine, what
//! the issue asks of the kit, beside the tools it is held against.
//!
//! * Evidence: three data sets are generated in a temp dir (a = 10,000 x 4 KiB,
//!   b = 4 x 256 MiB, c = 100,000 x 100 B nested as d00..d99/e0..e9/f000..f099;
//!   pseudo-random content from a fixed seed), the release `mc` is built, and
//!   `mc evidence pack` and `verify` are timed in each set (median of N runs
//!   after a warm-up, so the page cache is warm) with the child's peak RSS,
//!   beside `sha256sum` and two parallel `openssl dgst -sha256` processes
//!   (`find out -type f -print0 | xargs -0 -P2 -n N`, as `bench/hash_limits.sh`
//!   does) on the same files. Ratios compare this kit with 2 x openssl and
//!   with the seed kit: timed in the same run with `--seed-kit`, else its
//!   figures from the issue (labelled as such). On set c, the kernel's floor
//!   is timed too: every file opened, read once and closed on every core,
//!   nothing listed or hashed ([`floor`]).
//! * Gateway: the release `xtask a2a serve` on 127.0.0.1 (a free port), loaded
//!   with `wrk` when it is installed, else with the kit's own bounded load.
//! * `golive`: the warm wall time of this xtask binary's `golive` in a temp
//!   project, and cargo's own start-up cost of `cargo xtask`.
//! * With `--cold-build`: `cargo build -p xtask` into a fresh target dir.
//!
//! Everything is bounded in count and time and goes to loopback only.
//! Benchmarks never run in `cargo test`. The timed children are started with
//! `std::process::Command` rather than xshell because their peak RSS comes
//! from `wait4` on their pid; every other command goes through `cmd!`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::flags::{BenchArgs, BenchSet};

#[cfg(unix)]
mod floor;
mod gateway;
mod summary;
pub mod traffic;

use crate::util::{self, exit};
pub use summary::{Row, Summary};

/// The seed kit's pack times from the issue's table (2-core EPYC, warm cache,
/// median of 3), for sets a, b and c.
const SEED_PACK_S: [(&str, f64); 3] = [("a", 0.54), ("b", 1.02), ("c", 4.66)];
/// The seed kit's verify time on set c (issue 15's table).
const SEED_VERIFY_C_S: f64 = 4.85;
/// The signing key the benchmark packs with.
const BENCH_KEY: &str = "bench-key";

/// One data set: `files` files of `size` bytes under `out/`.
#[derive(Debug, Clone, Copy)]
struct DataSet {
    name: &'static str,
    files: u64,
    size: u64,
    nested: bool,
}

impl DataSet {
    fn all(scale_down: u64) -> [DataSet; 3] {
        [
            DataSet {
                name: "a",
                files: (10_000 / scale_down).max(1),
                size: 4096,
                nested: false,
            },
            DataSet {
                name: "b",
                files: 4,
                size: ((256 << 20) / scale_down).max(1),
                nested: false,
            },
            DataSet {
                name: "c",
                files: (100_000 / scale_down).max(1),
                size: 100,
                nested: true,
            },
        ]
    }

    fn bytes(&self) -> u64 {
        self.files * self.size
    }

    /// The path of file `i`, relative to `out/`.
    fn file(&self, i: u64) -> String {
        match (self.name, self.nested) {
            (_, true) => format!("d{:02}/e{}/f{:03}.txt", i / 1000, i / 100 % 10, i % 100),
            ("b", _) => format!("big{i}.bin"),
            _ => format!("f{i:05}.bin"),
        }
    }
}

/// `cargo xtask bench`.
pub fn run(root: &Path, args: &BenchArgs) -> Result<u8> {
    let sets = parse_sets(&args.sets, args.scale_down);
    let sh = Shell::new().context("cannot start a shell")?;
    sh.change_dir(root);
    let tmp = tempfile::Builder::new()
        .prefix("mc-bench-")
        .tempdir()
        .context("cannot create a temp dir for the benchmark")?;

    println!("# cargo xtask bench");
    println!();
    println!("- date: {}", util::rfc3339(util::now_epoch()?));
    println!("- machine: {}", machine());
    println!("- load average at start: {}", load_average());
    println!(
        "- runs: median of {} after one warm-up{}",
        args.runs,
        if args.scale_down > 1 {
            format!("; data scaled down {}x", args.scale_down)
        } else {
            String::new()
        }
    );

    let need_release = (!args.no_evidence && !sets.is_empty()) || !args.no_gateway;
    let bins = if need_release {
        // The xtask binary as this repository's `cargo xtask` alias builds it.
        eprintln!("bench: building the release mc and xtask (with mimalloc)");
        cmd!(
            sh,
            "cargo build --release --quiet -p mc -p xtask --features xtask/mimalloc"
        )
        .run()
        .context("cannot build the release binaries")?;
        Some(release_dir(&sh)?)
    } else {
        None
    };

    let mut code = exit::OK;
    let mut summary = Summary::default();
    if !args.no_gateway {
        let xtask = bins.as_ref().expect("built").join(exe("xtask"));
        gateway::bench(&sh, &xtask, tmp.path(), args, &mut summary)?;
    }
    if !args.no_evidence && !sets.is_empty() {
        let mc = bins.as_ref().expect("built").join(exe("mc"));
        if !bench_evidence(&sh, &mc, tmp.path(), &sets, args, &mut summary)? {
            code = exit::ERROR;
        }
    }
    if !args.no_golive {
        bench_golive(&sh, root, tmp.path(), args.runs, &mut summary)?;
    }
    if args.cold_build {
        bench_cold_build(&sh, root, &mut summary)?;
    }
    println!();
    println!("- load average at end: {}", load_average());
    println!();
    println!("## Summary: every figure beside its reference");
    println!();
    print!("{}", summary.to_markdown());
    println!();
    println!(
        "load: the 1-minute load average when the figure was taken (the machine has {} cores; \
         above that, figures are lower bounds).",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if code != exit::OK {
        // The one path to a non-zero exit: an error carrying its code.
        return Err(util::fail(
            code,
            anyhow::anyhow!("a measured `mc` run failed (its error is above)"),
        ));
    }
    Ok(exit::OK)
}

/// Parses `--sets` (`a,b,c`) into data sets, in the given order.
fn parse_sets(list: &[BenchSet], scale_down: u64) -> Vec<DataSet> {
    let all = DataSet::all(scale_down);
    let mut out: Vec<DataSet> = Vec::new();
    for name in list.iter().map(|s| s.name()) {
        let set = all
            .iter()
            .find(|s| s.name == name)
            .expect("a, b and c exist");
        if !out.iter().any(|s| s.name == name) {
            out.push(*set);
        }
    }
    out
}

/// The directory cargo puts release binaries in (honours CARGO_TARGET_DIR and
/// the workspace's configuration).
fn release_dir(sh: &Shell) -> Result<PathBuf> {
    let meta = cmd!(sh, "cargo metadata --format-version 1 --no-deps")
        .quiet()
        .read()
        .context("cannot run cargo metadata")?;
    let meta: serde_json::Value =
        serde_json::from_str(&meta).context("cargo metadata printed no JSON")?;
    let dir = meta["target_directory"]
        .as_str()
        .context("cargo metadata has no target_directory")?;
    Ok(Path::new(dir).join("release"))
}

fn exe(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

/// The CPU model and core count.
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model}, {cores} cores, {}", std::env::consts::OS)
}

/// The 1-, 5- and 15-minute load averages (figures mean little above ~1).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

// ---------------------------------------------------------------------------
// Data sets

/// Size of the pseudo-random block every file is cut from.
const BLOCK: usize = 1 << 20;

/// SplitMix64: a tiny, well-mixed generator (the data only has to be
/// incompressible and reproducible, not secret).
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Writes `set` under `dir/out/`. Every file is a window of one pseudo-random
/// block at an offset drawn from the seed and the file's index (large files
/// are a sequence of rotated blocks), so generation costs only the writes,
/// even in a debug build, and the content is the same on every run.
fn generate(dir: &Path, set: &DataSet) -> Result<()> {
    const SEED: u64 = 0x6d63_2d62_656e_6368; // "mc-bench"
    let mut block = vec![0u8; BLOCK];
    let mut state = SEED;
    for chunk in block.chunks_mut(8) {
        state = splitmix(state);
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    let out = dir.join("out");
    if set.nested {
        for d in 0..set.files.div_ceil(1000) {
            for e in 0..10 {
                let p = out.join(format!("d{d:02}/e{e}"));
                std::fs::create_dir_all(&p)
                    .with_context(|| format!("cannot create {}", p.display()))?;
            }
        }
    } else {
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(set.files as usize) as u64;
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (block, out) = (&block, &out);
                s.spawn(move || -> Result<()> {
                    for i in (t..set.files).step_by(threads as usize) {
                        let path = out.join(set.file(i));
                        write_file(&path, block, set.size, SEED ^ i)
                            .with_context(|| format!("cannot write {}", path.display()))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join().expect("a generator thread panicked")?;
        }
        Ok(())
    })?;
    std::fs::create_dir_all(dir.join("dist"))?;
    Ok(())
}

fn write_file(path: &Path, block: &[u8], size: u64, seed: u64) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    let mut left = size as usize;
    let mut n = 0u64;
    while left > 0 {
        let len = left.min(block.len());
        let off = (splitmix(seed.wrapping_add(n)) % (block.len() - len + 1) as u64) as usize;
        if len == block.len() {
            f.write_all(&block[off..])?;
            f.write_all(&block[..off])?;
        } else {
            f.write_all(&block[off..off + len])?;
        }
        left -= len;
        n += 1;
    }
    Ok(())
}

/// Flushes the generated data to disk, so write-back does not run during the
/// measurements.
fn sync_disks() {
    #[cfg(unix)]
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe {
        libc::sync()
    };
}

// ---------------------------------------------------------------------------
// Timed children

/// One timed run of a child: wall seconds, exit code, peak RSS in KiB.
#[derive(Debug, Clone, Copy)]
struct Timed {
    wall_s: f64,
    code: Option<i32>,
    max_rss_kib: Option<u64>,
}

/// GNU time, when installed: the peak RSS of a child it starts is the child's
/// own. (A child that `wait4` reports on directly also counts its launcher's:
/// Linux carries the peak RSS of the address space a process had before
/// `exec`, and std spawns with `vfork`, so that is this xtask's.)
const GNU_TIME: &str = "/usr/bin/time";

/// Runs `program args` in `dir` with `envs` to completion (stdout discarded,
/// stderr to `stderr_to`) and measures it: wall time, exit code and peak RSS
/// (through GNU time when present, else wait4's rusage, which is then an
/// upper bound).
fn timed(
    program: &Path,
    args: &[&str],
    dir: &Path,
    envs: &[(&str, &str)],
    stderr_to: &Path,
) -> Result<Timed> {
    let err = std::fs::File::create(stderr_to)
        .with_context(|| format!("cannot create {}", stderr_to.display()))?;
    let rss_file = stderr_to.with_extension("rss");
    let gnu_time = Path::new(GNU_TIME).is_file();
    let mut cmd = if gnu_time {
        let mut c = Command::new(GNU_TIME);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args)
        .current_dir(dir)
        .env_remove("MC_SIGNING_KEY_FILE")
        .env_remove("A2A_URL")
        .env_remove("GITHUB_STEP_SUMMARY");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    let (code, mut max_rss_kib) = wait_with_rusage(child)?;
    let wall_s = started.elapsed().as_secs_f64();
    if gnu_time {
        max_rss_kib = std::fs::read_to_string(&rss_file)
            .ok()
            .and_then(|s| s.lines().last()?.trim().parse().ok());
    }
    Ok(Timed {
        wall_s,
        code,
        max_rss_kib,
    })
}

#[cfg(unix)]
fn wait_with_rusage(child: std::process::Child) -> Result<(Option<i32>, Option<u64>)> {
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    let mut status = 0;
    // SAFETY: rusage is plain data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unreaped child; the pointers are valid.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4 failed");
        }
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    // ru_maxrss is in KiB on Linux (bytes on macOS).
    let rss = u64::try_from(usage.ru_maxrss).ok();
    let rss = if cfg!(target_os = "macos") {
        rss.map(|b| b / 1024)
    } else {
        rss
    };
    Ok((code, rss))
}

#[cfg(not(unix))]
fn wait_with_rusage(mut child: std::process::Child) -> Result<(Option<i32>, Option<u64>)> {
    let status = child.wait().context("cannot wait for a child")?;
    Ok((status.code(), None))
}

/// Whether `program` is on PATH.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(exe(program)).is_file()))
}

// ---------------------------------------------------------------------------
// Evidence

/// Medians of one operation over the runs.
#[derive(Debug, Clone, Copy, Default)]
struct Measured {
    wall_s: f64,
    max_rss_mib: Option<f64>,
    ok: bool,
}

/// Times `mc ARGS...` in `dir`, where `mc` is a program and the arguments
/// that come first (`python3 tools/mc.py` for the seed kit).
fn measure_mc(mc: &[&Path], dir: &Path, args: &[&str], runs: u32, log: &Path) -> Result<Measured> {
    let (program, lead) = mc.split_first().expect("a program");
    let mut all: Vec<&str> = lead.iter().filter_map(|p| p.to_str()).collect();
    all.extend_from_slice(args);
    let args = &all[..];
    let mut walls = Vec::new();
    let mut rss = Vec::new();
    let mut ok = true;
    for run in 0..=runs {
        let t = timed(program, args, dir, &[("MC_SIGNING_KEY", BENCH_KEY)], log)?;
        if t.code != Some(0) {
            let err = std::fs::read_to_string(log).unwrap_or_default();
            eprintln!(
                "bench: `{} {}` failed ({:?}): {}",
                program.display(),
                args.join(" "),
                t.code,
                err.trim()
            );
            ok = false;
        }
        if run > 0 {
            walls.push(t.wall_s);
            rss.extend(t.max_rss_kib.map(|k| k as f64 / 1024.0));
        }
    }
    Ok(Measured {
        wall_s: median(&walls),
        max_rss_mib: (!rss.is_empty()).then(|| median(&rss)),
        ok,
    })
}

/// Times `find out -type f -print0 | xargs -0 [-P2 -n N] HASHER` in `dir`.
fn measure_hasher(
    sh: &Shell,
    dir: &Path,
    parallel: bool,
    hasher: &[&str],
    runs: u32,
    files: u64,
) -> Result<f64> {
    let _cd = sh.push_dir(dir);
    let script = if parallel {
        r#"n=$1; shift; find out -type f -print0 | xargs -0 -P2 -n "$n" "$@" > /dev/null"#
    } else {
        r#"shift; find out -type f -print0 | xargs -0 "$@" > /dev/null"#
    };
    let n = files.div_ceil(16).max(1).to_string();
    let mut walls = Vec::new();
    for run in 0..=runs {
        let started = Instant::now();
        cmd!(sh, "sh -c {script} sh {n} {hasher...}")
            .quiet()
            .run()
            .with_context(|| format!("{} failed", hasher.join(" ")))?;
        if run > 0 {
            walls.push(started.elapsed().as_secs_f64());
        }
    }
    Ok(median(&walls))
}

/// The summary's rows for one set: pack and verify against two openssl
/// processes (the first round's 0.9x), and on set c verify against its own pack,
/// the seed kit (8x) and 32 MiB of peak RSS.
fn evidence_rows(
    summary: &mut Summary,
    set: &DataSet,
    pack: &Measured,
    verify: &Measured,
    openssl: Option<f64>,
    seed_verify: Option<(f64, &str)>,
    args: &BenchArgs,
) {
    let what = format!(
        "{} files x {}",
        summary::thousands(set.files as f64),
        if set.size >= 1 << 20 {
            format!("{} MiB", set.size >> 20)
        } else if set.size >= 1024 {
            format!("{} KiB", set.size >> 10)
        } else {
            format!("{} B", set.size)
        }
    );
    if let Some(o) = openssl {
        for (op, m) in [("pack", pack), ("verify", verify)] {
            summary.add(
                format!("`mc evidence {op}`, set {}: {what}", set.name),
                format!("{:.3} s, {:.2}x 2 x openssl", m.wall_s, o / m.wall_s),
                format!("2 x openssl {o:.3} s; at least 0.9x"),
                Some(m.ok && o / m.wall_s >= 0.9),
            );
        }
    }
    if set.name != "c" {
        return;
    }
    let seed = seed_verify_c(seed_verify, args);
    let rss = verify.max_rss_mib;
    summary.add(
        format!("`mc evidence verify`, {what}"),
        format!(
            "{:.3} s, {}",
            verify.wall_s,
            rss.map_or("peak RSS n/a".to_string(), |r| format!(
                "{r:.1} MiB peak RSS"
            ))
        ),
        format!(
            "its own pack {:.3} s; {}; RSS < 32 MiB",
            pack.wall_s,
            seed.map_or("seed n/a".to_string(), |(s, from)| format!(
                "seed {s:.2} s ({from}): {:.1}x, at least 8x",
                s / verify.wall_s
            ))
        ),
        Some(
            verify.ok
                && verify.wall_s <= pack.wall_s
                && !seed.is_some_and(|(s, _)| s / verify.wall_s < 8.0)
                && rss.is_some_and(|r| r < 32.0),
        ),
    );
}

fn bench_evidence(
    sh: &Shell,
    mc: &Path,
    tmp: &Path,
    sets: &[DataSet],
    args: &BenchArgs,
    summary: &mut Summary,
) -> Result<bool> {
    let have_sha256sum = on_path("sha256sum") && on_path("find") && on_path("xargs");
    let have_openssl = on_path("openssl") && on_path("find") && on_path("xargs");
    let log = tmp.join("child-stderr.txt");
    let mut table = String::new();
    let mut all_ok = true;
    for set in sets {
        let dir = tmp.join(set.name);
        let started = Instant::now();
        generate(&dir, set)?;
        sync_disks();
        eprintln!(
            "bench: set {}: {} files, {:.1} MB generated in {:.1} s",
            set.name,
            set.files,
            set.bytes() as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        let pack = measure_mc(
            &[mc],
            &dir,
            &["evidence", "pack", "--out", "dist/bundle.json"],
            args.runs,
            &log,
        )?;
        let verify = measure_mc(
            &[mc],
            &dir,
            &["evidence", "verify", "dist/bundle.json"],
            args.runs,
            &log,
        )?;
        all_ok &= pack.ok && verify.ok;
        let sha256sum = have_sha256sum
            .then(|| measure_hasher(sh, &dir, false, &["sha256sum"], args.runs, set.files))
            .transpose()?;
        let openssl = have_openssl
            .then(|| {
                measure_hasher(
                    sh,
                    &dir,
                    true,
                    &["openssl", "dgst", "-sha256"],
                    args.runs,
                    set.files,
                )
            })
            .transpose()?;
        // The seed kit, measured here when given, else its pack figure from
        // the issue (only comparable at full scale).
        let seed_kit = match &args.seed_kit {
            Some(script) => {
                let python = Path::new("python3");
                let script = std::path::absolute(script)
                    .with_context(|| format!("--seed-kit {}", script.display()))?;
                let kit = [python, script.as_path()];
                let pack = measure_mc(
                    &kit,
                    &dir,
                    &["evidence", "pack", "--out", "dist/seed.json"],
                    args.runs,
                    &log,
                )?;
                let verify = measure_mc(
                    &kit,
                    &dir,
                    &["evidence", "verify", "dist/seed.json"],
                    args.runs,
                    &log,
                )?;
                [
                    Some((pack.wall_s, "measured")),
                    Some((verify.wall_s, "measured")),
                ]
            }
            None => {
                let quoted = (args.scale_down == 1)
                    .then(|| {
                        SEED_PACK_S
                            .iter()
                            .find(|(n, _)| *n == set.name)
                            .map(|(_, s)| (*s, "issue's figure"))
                    })
                    .flatten();
                [quoted, None]
            }
        };
        for ((op, m), seed) in [("pack", pack), ("verify", verify)]
            .into_iter()
            .zip(seed_kit)
        {
            let ratio = |other: Option<f64>| {
                other.map_or("n/a".to_string(), |o| format!("{:.2}", o / m.wall_s))
            };
            let secs = |s: Option<f64>| s.map_or("n/a".to_string(), |s| format!("{s:.3}"));
            let _ = writeln!(
                table,
                "| {} | {} | {:.1} | {op}{} | {:.3} | {:.0} | {:.0} | {} | {} | {} | {} | {} |",
                set.name,
                set.files,
                set.bytes() as f64 / 1e6,
                if m.ok { "" } else { " FAILED" },
                m.wall_s,
                set.bytes() as f64 / 1e6 / m.wall_s,
                set.files as f64 / m.wall_s,
                m.max_rss_mib
                    .map_or("n/a".to_string(), |r| format!("{r:.1}")),
                secs(sha256sum),
                secs(openssl),
                ratio(openssl),
                seed.map_or("n/a".to_string(), |(s, what)| format!(
                    "{s:.3} s ({what}): {:.1}x",
                    s / m.wall_s
                )),
            );
        }
        #[cfg(unix)]
        let floor = (set.name == "c")
            .then(|| read_floor(&dir, set, args.runs))
            .transpose()?;
        #[cfg(not(unix))]
        let floor = None;
        evidence_rows(summary, set, &pack, &verify, openssl, seed_kit[1], args);
        if let Some(floor) = floor {
            floor_row(summary, set, floor, seed_verify_c(seed_kit[1], args));
        }
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    println!();
    println!("## Evidence pack and verify (release `mc`; warm page cache)");
    println!();
    println!(
        "| set | files | MB | op | kit s | MB/s | files/s | peak RSS MiB{} | sha256sum s | 2 x openssl s | kit vs 2 x openssl | seed kit: s, kit's speed-up |",
        if Path::new(GNU_TIME).is_file() {
            ""
        } else {
            " (upper bound)"
        }
    );
    println!("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    print!("{table}");
    println!();
    println!(
        "kit vs 2 x openssl: openssl's time / the kit's (1.00 = as fast; the issue asks >= 0.90). \
         Seed kit: its time, measured here with --seed-kit or else its pack time as issue 7 measured it \
         (2-core EPYC), and how many times faster the kit is (the issue asks >= 2x on set b, >= 6x on \
         sets a and c)."
    );
    Ok(all_ok)
}

/// The seed kit's verify time on set c: measured in this run, else the
/// issue's figure (only comparable at full scale), with where it comes from.
fn seed_verify_c<'a>(measured: Option<(f64, &'a str)>, args: &BenchArgs) -> Option<(f64, &'a str)> {
    measured.or((args.scale_down == 1).then_some((SEED_VERIFY_C_S, "issue 15")))
}

/// The summary's row of the kernel's floor on set c, beside what 8x the
/// seed leaves for all of `verify`.
fn floor_row(summary: &mut Summary, set: &DataSet, floor: f64, seed: Option<(f64, &str)>) {
    summary.add(
        format!(
            "the kernel's floor on set c: open, read once and close each of its {} files, on every core (nothing listed, hashed or parsed)",
            summary::thousands(set.files as f64)
        ),
        format!("{floor:.3} s"),
        seed.map_or("seed n/a".to_string(), |(s, from)| {
            format!("8x the seed ({s:.2} s, {from}) asks all of `verify` in {:.3} s", s / 8.0)
        }),
        None,
    );
}

/// The median time of [`floor::read_once`] over `set`'s files in `dir`,
/// after a warm-up.
#[cfg(unix)]
fn read_floor(dir: &Path, set: &DataSet, runs: u32) -> Result<f64> {
    let files: Vec<String> = (0..set.files)
        .map(|i| format!("out/{}", set.file(i)))
        .collect();
    let mut walls = Vec::new();
    for run in 0..=runs {
        let (wall, bytes) = floor::read_once(dir, &files)?;
        if bytes != set.bytes() {
            bail!(
                "the floor read {bytes} bytes of set {}, not {}",
                set.name,
                set.bytes()
            );
        }
        if run > 0 {
            walls.push(wall);
        }
    }
    eprintln!(
        "bench: set {}: the kernel's floor {:.3} s",
        set.name,
        median(&walls)
    );
    Ok(median(&walls))
}

// ---------------------------------------------------------------------------
// golive and builds

fn bench_golive(
    sh: &Shell,
    root: &Path,
    tmp: &Path,
    runs: u32,
    summary: &mut Summary,
) -> Result<()> {
    let project = tmp.join("golive");
    std::fs::create_dir_all(project.join("xtask"))?;
    std::fs::create_dir_all(project.join("out"))?;
    let sample = root.join("out/sample.txt");
    if sample.is_file() {
        std::fs::copy(&sample, project.join("out/sample.txt"))?;
    }
    if root.join("golive.toml").is_file() {
        std::fs::copy(root.join("golive.toml"), project.join("golive.toml"))?;
    }
    let me = std::env::current_exe().context("cannot find this xtask binary")?;
    let log = tmp.join("golive-stderr.txt");
    let manifest_dir = project.join("xtask");
    let manifest_dir = manifest_dir
        .to_str()
        .context("the temp dir's path is not valid UTF-8")?;
    let mut walls = Vec::new();
    for run in 0..=runs {
        let t = timed(
            &me,
            &["golive"],
            &project,
            &[
                // The xtask finds its project root from CARGO_MANIFEST_DIR.
                ("CARGO_MANIFEST_DIR", manifest_dir),
                ("CI", "true"),
                ("MC_SIGNING_KEY", BENCH_KEY),
                ("MC_SEED", "7"),
            ],
            &log,
        )?;
        if t.code != Some(0) {
            bail!(
                "golive failed in {} ({:?}): {}",
                project.display(),
                t.code,
                std::fs::read_to_string(&log).unwrap_or_default().trim()
            );
        }
        if run > 0 {
            walls.push(t.wall_s);
        }
    }
    // What `cargo xtask` adds before the task starts: cargo's up-to-date check.
    let mut cargo = Vec::new();
    for run in 0..=runs {
        let started = Instant::now();
        cmd!(sh, "cargo run --quiet --package xtask -- --version")
            .quiet()
            .ignore_stdout()
            .run()
            .context("cannot run `cargo xtask --version`")?;
        if run > 0 {
            cargo.push(started.elapsed().as_secs_f64());
        }
    }
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };
    println!();
    println!(
        "## golive, warm (no --checks; in-process gateway with 200 requests at concurrency 4)"
    );
    println!();
    println!("| what | median s |");
    println!("|---|---:|");
    println!(
        "| `xtask golive` ({profile} build, as `cargo xtask` runs it) | {:.3} |",
        median(&walls)
    );
    println!(
        "| cargo's start-up of `cargo xtask` (a no-op `--version`) | {:.3} |",
        median(&cargo)
    );
    println!(
        "| `cargo xtask golive`, the sum | {:.3} |",
        median(&walls) + median(&cargo)
    );
    summary.add(
        "`cargo xtask golive`, warm (no `--checks`)",
        format!("{:.2} s", median(&walls) + median(&cargo)),
        "well under a second",
        Some(median(&walls) + median(&cargo) < 1.0),
    );
    Ok(())
}

/// Cold builds as a fresh clone pays them: the committed tree (`git archive
/// HEAD`) in a temp dir, each command with its own empty target dir, on this
/// machine's cores. `cargo xtask golive` builds and runs; `cargo test
/// --workspace` builds and runs every test.
fn bench_cold_build(sh: &Shell, root: &Path, summary: &mut Summary) -> Result<()> {
    let clone = tempfile::Builder::new()
        .prefix("mc-bench-clone-")
        .tempdir()
        .context("cannot create a temp dir for the clone")?;
    let tar = clone.path().join("head.tar");
    cmd!(sh, "git -C {root} archive --format=tar -o {tar} HEAD")
        .quiet()
        .run()
        .context("cannot export HEAD with git archive (is this a git checkout?)")?;
    let src = clone.path().join("src");
    std::fs::create_dir_all(&src)?;
    cmd!(sh, "tar -xf {tar} -C {src}")
        .quiet()
        .run()
        .context("cannot unpack the clone")?;
    let _cd = sh.push_dir(&src);
    let steps: [(&str, &[&str], f64); 2] = [
        (
            "`cargo xtask golive` on a fresh clone (cold build, debug, and the run)",
            &["xtask", "golive"],
            60.0,
        ),
        (
            "`cargo test --workspace` on a fresh clone",
            &["test", "--workspace", "--quiet"],
            120.0,
        ),
    ];
    println!();
    println!("## Cold build (fresh clone of HEAD, empty target dir per command)");
    println!();
    println!("| what | s | load at start | load at end |");
    println!("|---|---:|---:|---:|");
    for (what, cargo_args, target_s) in steps {
        let target = tempfile::Builder::new()
            .prefix("mc-bench-target-")
            .tempdir()
            .context("cannot create a temp target dir")?;
        eprintln!("bench: {what} (target dir {})", target.path().display());
        let load_before = load_average();
        let started = Instant::now();
        cmd!(sh, "cargo {cargo_args...}")
            .env("CARGO_TARGET_DIR", target.path())
            .env("MC_SIGNING_KEY", BENCH_KEY)
            .env("MC_SEED", "7")
            .env_remove("CI")
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("{what} failed"))?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "| {what} | {secs:.1} | {load_before} | {} |",
            load_average()
        );
        summary.add(
            what,
            format!("{secs:.0} s"),
            format!("{target_s:.0} s or less"),
            Some(secs <= target_s),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[5.0]), 5.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn sets_parse_and_scale() {
        let sets = parse_sets(&[BenchSet::C, BenchSet::A, BenchSet::C], 10);
        let names: Vec<_> = sets.iter().map(|s| s.name).collect();
        assert_eq!(names, ["c", "a"]);
        assert_eq!(sets[0].files, 10_000);
        let c = DataSet::all(1)[2];
        assert_eq!(c.file(0), "d00/e0/f000.txt");
        assert_eq!(c.file(99_999), "d99/e9/f099.txt");
    }
}
