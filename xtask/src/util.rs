//! Small helpers that several tasks share: exit codes, the project root, atomic
//! writes, hex, and the environment variables the kit reads.
//!
//! Everything the kit writes goes through [`write_atomic`]: a temporary file in
//! the target's own directory, flushed to disk, then renamed over the target.
//! A reader (or a crash) therefore sees the previous complete file or the new
//! complete file, never a half-written one.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Exit codes of `mc` and `cargo xtask`, documented in the README.
pub mod exit {
    /// Everything asked for was done and passed.
    pub const OK: u8 = 0;
    /// The task could not be done: unreadable input, bad config, I/O failure.
    pub const ERROR: u8 = 1;
    /// Bad command line (clap), or an evidence bundle that does not verify
    /// (the seed kit's code, kept so scripts keep working).
    pub const NOT_VERIFIED: u8 = 2;
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
    let mut tmp = tempfile::Builder::new()
        .prefix(&tmp_prefix(name))
        .suffix(".tmp")
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
    Ok(())
}

/// The prefix of the temporary files [`write_atomic`] makes for a target named
/// `name`; the evidence packer skips such files.
pub fn tmp_prefix(name: &std::ffi::OsStr) -> String {
    format!(".{}.", name.to_string_lossy())
}

/// Serialises `value` as pretty JSON with a trailing newline and writes it
/// atomically.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).expect("a JSON value always serialises");
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
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
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/c.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let left: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }
}
