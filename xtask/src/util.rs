//! What several tasks share: the exit codes and the one path from a task's
//! result to its code, printing to a stdout that may be closed, the project
//! root, atomic writes, hex, and the environment variables the kit reads.
//!
//! Everything the kit writes goes through [`write_atomic`]: a temporary file in
//! the target's own directory, flushed to disk, then renamed over the target.
//! A reader (or a crash) therefore sees the previous complete file or the new
//! complete file, never a half-written one.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Exit codes of `mc` and `cargo xtask`: the README's table "Exit codes".
///
/// A task returns `Ok(OK)` when everything it was asked passed. Any other
/// ending is an error carrying its code ([`fail`]): a verdict that did not
/// pass (2 evidence that does not verify, 3 a failed gate, 4 a failed
/// check) as much as a bad option (2) or a task that could not be done (1,
/// the code of every error that carries none). [`finish`] turns either into
/// the process's exit code, printing the error once.
pub mod exit {
    /// Everything asked for was done and passed.
    pub const OK: u8 = 0;
    /// The task could not be done: unreadable input, bad config, I/O failure.
    pub const ERROR: u8 = 1;
    /// Bad command line (clap), or an evidence bundle that does not verify
    /// (the seed kit's code, kept so scripts keep working).
    pub const NOT_VERIFIED: u8 = 2;
    /// A bad option value (same code as a clap usage error).
    pub const USAGE: u8 = 2;
    /// A gate failed (or warned under `--strict`).
    pub const GATE_FAILED: u8 = 3;
    /// A pre-merge check (`golive --checks`) failed.
    pub const CHECK_FAILED: u8 = 4;
}

/// An error that carries the exit code it should end the process with.
///
/// Anything else that reaches `main` exits with [`exit::ERROR`].
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

/// Wraps `error` so that it ends the process with `code`.
pub fn fail(code: u8, error: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(Failure { code, error })
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Failure {}

/// The exit code an error should end the process with.
pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map_or(exit::ERROR, |f| f.code)
}

/// Prints an error once, on one line, with its whole context chain, prefixed
/// with the program name; returns the exit code to end with.
pub fn report_error(prog: &str, err: &anyhow::Error) -> u8 {
    eprintln!("{prog}: {err:#}");
    exit_code_of(err)
}

/// The one path from a task's result to the process's exit code: `Ok(code)`
/// ends with `code`; an error is printed once ([`report_error`]) and ends
/// with the code it carries.
pub fn finish(prog: &str, result: Result<u8>) -> std::process::ExitCode {
    std::process::ExitCode::from(match result {
        Ok(code) => code,
        Err(err) => report_error(prog, &err),
    })
}

/// Whether stdout was found closed (`| head -1`): what is left to print is dropped.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Prints `text` to stdout. A closed stdout is not an error (a reader such as
/// `head -1` has all it wanted): the rest of the output is dropped quietly and
/// the task ends with its own exit code. `println!` would panic instead.
pub fn print_stdout(text: &str) -> Result<()> {
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        r => r.context("cannot write to stdout"),
    }
}

/// [`print_stdout`] of `line` and a newline.
pub fn println_stdout(line: &str) -> Result<()> {
    print_stdout(&format!("{line}\n"))
}

/// The root of the workspace this xtask belongs to: the parent of the xtask
/// crate's manifest directory (the cargo-xtask convention).
pub fn project_root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// Writes `bytes` to `path` atomically: parents are created, the data goes to a
/// temporary file beside the target, is synced, then renamed over the target.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`] for content produced by `write` (through a buffer), so a
/// large file is never held in memory whole.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file path", path.display()))?;
    let prefix = tmp_prefix(name);
    let mut builder = tempfile::Builder::new();
    builder
        .prefix(&prefix)
        .rand_bytes(TMP_RAND_CHARS)
        .suffix(TMP_SUFFIX);
    // tempfile makes its files readable by their owner only (0600), and the
    // rename keeps that mode; what the kit writes is for others to read, so
    // it is created like any other file: 0666 less the umask.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let written = {
        let mut buf = std::io::BufWriter::with_capacity(256 * 1024, tmp.as_file_mut());
        write(&mut buf).and_then(|()| buf.flush())
    };
    written
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // Make the rename itself durable, so a power cut after we return cannot
    // bring the old file back. Best effort: not every platform can open a
    // directory, and the data is already safely in place.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// How many random characters [`write_atomic`]'s temporary file names have.
const TMP_RAND_CHARS: usize = 6;
/// The suffix of [`write_atomic`]'s temporary file names.
const TMP_SUFFIX: &str = ".tmp";

/// Whether `name` (a path ending in a file name) has exactly the shape of a
/// temporary file of [`write_atomic`] whose path starts with `prefix`:
/// `prefix`, then six alphanumeric characters, then `.tmp`.
pub fn is_tmp_name(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(TMP_SUFFIX))
        .is_some_and(|r| r.len() == TMP_RAND_CHARS && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The prefix of the temporary files [`write_atomic`] makes for a target named
/// `name`; the evidence packer skips such files.
pub fn tmp_prefix(name: &std::ffi::OsStr) -> String {
    format!(".{}.", name.to_string_lossy())
}

/// Removes the temporary files an interrupted [`write_atomic`] of `path` left
/// beside it: names of exactly their shape, nothing else; a missing directory
/// is fine. Tasks call it before writing `path` again, so that a killed run's
/// half-written file does not stay in `out/` for the packer to take as
/// evidence. Two tasks writing one path at once may then see one of them
/// fail (its temporary file is gone), never a partial file at `path`.
pub fn remove_stale_tmp(path: &Path) -> Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let prefix = tmp_prefix(name);
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let stale = entry
            .file_name()
            .to_str()
            .is_some_and(|n| is_tmp_name(n, &prefix));
        if stale {
            match std::fs::remove_file(entry.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| {
                        format!("cannot remove the stale {}", entry.path().display())
                    })
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Serialises `value` as pretty JSON with a trailing newline and writes it
/// atomically.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).expect("a JSON value always serialises");
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Reads a whole file of at most `limit` bytes. A larger file (or an endless
/// one, like `/dev/zero`) is an error after reading `limit + 1` bytes, not
/// an attempt to hold all of it in memory.
pub fn read_limited(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            limit >> 20
        )));
    }
    Ok(bytes)
}

/// The digits of lowercase hex, the only hex the kit writes or accepts.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX_DIGITS[usize::from(b >> 4)] as char);
        s.push(HEX_DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Whether `hex` (lowercase) spells `bytes`, without building a string.
pub fn hex_eq(bytes: &[u8], hex: &str) -> bool {
    hex.len() == bytes.len() * 2
        && bytes.iter().zip(hex.as_bytes().chunks(2)).all(|(b, h)| {
            h[0] == HEX_DIGITS[usize::from(b >> 4)] && h[1] == HEX_DIGITS[usize::from(b & 15)]
        })
}

/// Whether `s` is `len` lowercase hex digits.
pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| hex_value(b).is_some())
}

/// The value of one lowercase hex digit.
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// The bytes that lowercase hex `s` spells; `None` when it is not such hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(hex_value(p[0])? << 4 | hex_value(p[1])?))
        .collect()
}

/// The release version: `MC_VERSION`, else the seed's `v0.3.2-mc`.
pub fn version_from_env() -> String {
    std::env::var("MC_VERSION")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "v0.3.2-mc".to_string())
}

/// Seconds since the Unix epoch: `SOURCE_DATE_EPOCH` when set (reproducible
/// builds), else the clock.
pub fn now_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v.trim().parse::<u64>().with_context(|| {
            format!("SOURCE_DATE_EPOCH={v:?} is not a whole number of seconds since 1970")
        }),
        _ => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())),
    }
}

/// Formats seconds since the epoch as RFC 3339 UTC (`2026-11-27T09:33:06Z`).
pub fn rfc3339(epoch: u64) -> String {
    let days = epoch / 86_400;
    let secs = epoch % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }

    #[test]
    fn hex_round_trips_and_is_checked() {
        assert_eq!(unhex("00abff"), Some(vec![0, 0xab, 0xff]));
        for bad in ["0g", "0", "AB"] {
            assert_eq!(unhex(bad), None, "{bad}");
        }
        assert!(hex_eq(&[0, 0xab], "00ab") && !hex_eq(&[0, 0xab], "00AB") && !hex_eq(&[0], "000"));
        assert!(is_hex("00ab", 4) && !is_hex("00ab", 6) && !is_hex("00AB", 4));
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/c.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let left: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_gives_the_usual_file_mode_not_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (atomic, plain) = (dir.path().join("a.json"), dir.path().join("b.json"));
        write_atomic(&atomic, b"{}").unwrap();
        std::fs::write(&plain, b"{}").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
        assert_eq!(
            mode(&atomic),
            mode(&plain),
            "same mode as a file made by fs::write"
        );
    }

    #[test]
    fn stale_tmp_files_of_a_path_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            ".r.json.Ab12Cd.tmp",
            ".r.json.notes.tmp",
            ".s.json.Ab12Cd.tmp",
            "r.json",
        ];
        for n in names {
            std::fs::write(dir.path().join(n), "x").unwrap();
        }
        remove_stale_tmp(&dir.path().join("r.json")).unwrap();
        remove_stale_tmp(&dir.path().join("gone/r.json")).unwrap();
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [".r.json.notes.tmp", ".s.json.Ab12Cd.tmp", "r.json"]);
    }

    #[test]
    fn tmp_names_are_recognised_exactly() {
        assert!(is_tmp_name("out/.b.json.Ab12Cd.tmp", "out/.b.json."));
        assert!(!is_tmp_name("out/.b.json.notes.tmp", "out/.b.json."));
        assert!(!is_tmp_name("out/.b.json.Ab-2Cd.tmp", "out/.b.json."));
        assert!(!is_tmp_name("out/.b.json.Ab12Cd.tmp.bak", "out/.b.json."));
    }
}
