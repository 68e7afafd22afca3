//! The kernel's share of reading many small files: what `verify` cannot go
//! below whatever it does in user space.
//!
//! Every file is opened relative to its directory, read once into a 64 KiB
//! buffer and closed, by one thread per core taking whole directories, as
//! the evidence walker does; nothing is listed, hashed or parsed. On set c
//! (100,000 files of 100 B) these three system calls a file are most of
//! `pack`'s and `verify`'s time, so this figure shows how much room a target
//! leaves for the rest (listing, SHA-256, the bundle, its HMAC).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};

/// Reads every file of `files` (paths relative to `root`, grouped by
/// directory) once; returns the wall time in seconds and the bytes read.
pub fn read_once(root: &Path, files: &[String]) -> Result<(f64, u64)> {
    let dirs = by_directory(root, files);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let read: Result<u64> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut bytes = 0u64;
                    while let Some((dir, names)) = dirs.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let handle = File::open(dir)
                            .with_context(|| format!("cannot open {}", dir.display()))?;
                        for name in names {
                            bytes += read_in(dir, &handle, name, &mut buf)?;
                        }
                    }
                    Ok(bytes)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .sum()
    });
    Ok((started.elapsed().as_secs_f64(), read?))
}

/// The files' directories, each with the names of its files.
fn by_directory<'a>(root: &Path, files: &'a [String]) -> Vec<(PathBuf, Vec<&'a str>)> {
    let mut dirs: Vec<(PathBuf, Vec<&str>)> = Vec::new();
    for rel in files {
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let dir = root.join(dir);
        match dirs.last_mut() {
            Some((last, names)) if *last == dir => names.push(name),
            _ => dirs.push((dir, vec![name])),
        }
    }
    dirs
}

/// Opens `name` in `dir` (as the evidence walker does), reads it once and
/// closes it: three system calls.
fn read_in(dir: &Path, handle: &File, name: &str, buf: &mut [u8]) -> Result<u64> {
    let mut file = crate::evidence::open_in(handle, name)
        .with_context(|| format!("cannot open {}/{name}", dir.display()))?;
    let n = file
        .read(buf)
        .with_context(|| format!("cannot read {}/{name}", dir.display()))?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for (i, rel) in ["a/x.txt", "a/y.txt", "b/c/z.txt", "top.txt"]
            .iter()
            .enumerate()
        {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "x".repeat(10 + i)).unwrap();
            files.push(rel.to_string());
        }
        let (_, bytes) = read_once(dir.path(), &files).unwrap();
        assert_eq!(bytes, 10 + 11 + 12 + 13);
        files.push("a/gone.txt".to_string());
        let e = read_once(dir.path(), &files).unwrap_err();
        assert!(e.to_string().ends_with("/a/gone.txt"), "{e:#}");
    }
}
