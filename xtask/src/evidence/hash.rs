//! Hashing files: streamed through one cache-sized buffer per worker, refusing
//! anything but a regular file and any file that changes while it is read.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::util;

/// A file's sha256 and size, or why it could not be hashed.
pub(super) type Hashed = std::io::Result<([u8; 32], u64)>;

/// The read buffer of each hashing worker. Measured on a 2-core EPYC: with
/// 64 KiB the data the kernel copies in is still in cache when SHA-256 reads
/// it; 128 KiB and more triple the kernel's time (sys 0.05 s against 0.22 s
/// for a 256 MiB file) and lose a third of the throughput.
pub(super) const HASH_BUF: usize = 64 * 1024;

/// Hashes `paths` (relative to `root`) on every core; results in input order.
pub(super) fn hash_all(root: &Path, paths: &[&str]) -> Vec<Hashed> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(paths.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Hashed>>> = Mutex::new((0..paths.len()).map(|_| None).collect());
    let work = || {
        let mut buf = vec![0u8; HASH_BUF];
        let mut local = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(path) = paths.get(i) else { break };
            local.push((i, hash_file_raw(&root.join(path), &mut buf)));
        }
        let mut all = results.lock().unwrap_or_else(|e| e.into_inner());
        for (i, r) in local {
            all[i] = Some(r);
        }
    };
    if threads == 1 {
        // One file or one core: no thread to start.
        work();
    } else {
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
            // Join each worker rather than leave it to the scope, which only
            // waits for the closures to return: a worker could still be
            // exiting (running its thread-local destructors) after hash_all
            // returned, which leak checkers report as a leak.
            for w in workers {
                if let Err(panic) = w.join() {
                    std::panic::resume_unwind(panic);
                }
            }
        });
    }
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every index is hashed once"))
        .collect()
}

/// Streams one file through SHA-256. A file whose size or modification time
/// changes while it is read is an error: its hash would describe no version
/// of it.
///
/// Anything but a regular file (a FIFO, a device, a directory, a symbolic
/// link) is refused before it is opened: opening a FIFO would block until
/// someone writes to it, so a manifest naming one would hang `verify`.
pub fn hash_file(path: &Path, buf: &mut [u8]) -> std::io::Result<(String, u64)> {
    hash_file_observed(path, buf, &mut |_| {})
}

/// [`hash_file`], calling `after_chunk` with the number of bytes hashed so far
/// after each chunk: tests use it to change a file in the middle of a read,
/// deterministically.
#[doc(hidden)]
pub fn hash_file_observed(
    path: &Path,
    buf: &mut [u8],
    after_chunk: &mut dyn FnMut(u64),
) -> std::io::Result<(String, u64)> {
    hash_file_raw_observed(path, buf, after_chunk).map(|(digest, size)| (util::hex(&digest), size))
}

/// [`hash_file`] with the digest as bytes.
fn hash_file_raw(path: &Path, buf: &mut [u8]) -> Hashed {
    hash_file_raw_observed(path, buf, &mut |_| {})
}

fn hash_file_raw_observed(path: &Path, buf: &mut [u8], after_chunk: &mut dyn FnMut(u64)) -> Hashed {
    if !std::fs::symlink_metadata(path)?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    hash_open_file(File::open(path)?, buf, after_chunk)
}

/// Opens `name` in the directory `dir` for reading, resolving only that one
/// name. It must be the regular file the listing saw: a symbolic link put in
/// its place fails (`O_NOFOLLOW`), and a FIFO cannot block the open
/// (`O_NONBLOCK`; the read then finds it is not a regular file).
#[cfg(unix)]
pub(crate) fn open_in(dir: &File, name: &str) -> std::io::Result<File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let name = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    // SAFETY: `dir` is an open descriptor and `name` a NUL-terminated string;
    // a non-negative result is a new descriptor that the File then owns.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: see above.
    Ok(unsafe { File::from_raw_fd(fd) })
}

#[cfg(not(unix))]
pub(super) fn open_in(_dir: &File, _name: &str) -> std::io::Result<File> {
    unreachable!("directories are held open on Unix only")
}

/// Hashes an open file (see [`hash_file`]).
pub(super) fn hash_open_file(
    mut file: File,
    buf: &mut [u8],
    after_chunk: &mut dyn FnMut(u64),
) -> Hashed {
    let before = file.metadata()?;
    if !before.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    // Reading stops at the size the file had when opened rather than at a
    // further read that returns nothing: one system call less per file, and
    // a file that grows meanwhile still fails the size check below. An empty
    // file is still read once: some files (procfs) say 0 and have content.
    while size < before.len() || (before.len() == 0 && size == 0) {
        let n = match file.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
        after_chunk(size);
    }
    let after = file.metadata()?;
    if size != before.len()
        || after.len() != before.len()
        || after.modified().ok() != before.modified().ok()
    {
        return Err(std::io::Error::other(
            "the file changed while it was being hashed; re-run once it is stable",
        ));
    }
    Ok((hasher.finalize().into(), size))
}
