//! `verify`: check a bundle's signature and every file it lists against the
//! files under the project root, and say in words why it is not ok.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use hmac::Mac;
use serde::Serialize;

use super::bundle::{
    canonical_mac, is_sorted, parse_bundle, read_limited_bundle, read_streamed_bundle, Artifact,
    Bundle, ALGO_SEED,
};
use super::hash::hash_all;
use super::paths::{check_no_escape, check_real_dir, check_rel_path, OwnBundle};
use super::seed::seed_signature_ok;
use super::walk::{walk, Found, Want};
use super::Key;
use crate::util::{self, exit};

/// The verdict on one bundle. Serialises to the JSON `verify` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub signature_ok: bool,
    pub algo: String,
    /// The bundle uses the seed kit's sha256(key + text), not an HMAC.
    pub weak_signature: bool,
    /// Listed files that are gone.
    pub missing: Vec<String>,
    /// Listed files whose size or sha256 changed.
    pub mismatch: Vec<String>,
    /// Files under the packed directory that the manifest does not list.
    pub extra: Vec<String>,
    /// Listed paths that were not read because they are unsafe.
    pub rejected: Vec<Rejected>,
    /// Why the bundle is not ok, in words.
    pub reasons: Vec<String>,
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    pub path: String,
    pub reason: String,
}

/// Verifies `bundle` (found at `bundle_path`) against the files under `root`.
pub fn verify(
    root: &Path,
    bundle: &Bundle,
    bundle_path: &Path,
    key: &Key,
    strict: bool,
) -> Verdict {
    let m = &bundle.manifest;
    let weak = m.signing.algo == ALGO_SEED;
    // The signature is checked on a thread of its own while the files are
    // listed and hashed: serialising a large manifest for the HMAC is one
    // core's work for a while, and the walk is often waiting on the disk.
    let (signature_ok, files) = std::thread::scope(|s| {
        let signature = s.spawn(|| signature_ok(bundle, key));
        let files = check_files(root, m.packed_dir(), &m.artifacts, bundle_path);
        let signature_ok = match signature.join() {
            Ok(ok) => ok,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (signature_ok, files)
    });
    let mut reasons = Vec::new();
    if !signature_ok {
        reasons
            .push("signature does not match: wrong key, or the manifest was changed".to_string());
    }
    if weak && strict {
        reasons.push(format!(
            "--strict rejects the seed kit's weak {ALGO_SEED:?} signature; re-pack with this kit"
        ));
    }

    reasons.extend(files.reasons);
    let ok = reasons.is_empty();
    Verdict {
        signature_ok,
        algo: m.signing.algo.clone(),
        weak_signature: weak,
        missing: files.missing,
        mismatch: files.mismatch,
        extra: files.extra,
        rejected: files.rejected,
        reasons,
        ok,
    }
}

/// What the files say about a list of artifacts packed from a directory.
#[derive(Debug, Clone, Default)]
pub struct FileCheck {
    pub missing: Vec<String>,
    pub mismatch: Vec<String>,
    pub extra: Vec<String>,
    pub rejected: Vec<Rejected>,
    /// Why the files are not ok, in words (empty when they are).
    pub reasons: Vec<String>,
}

/// Checks `artifacts`, packed from `dir`, against the files under `root`:
/// the file checks of [`verify`] for any signed list of files (a bundle's
/// manifest, an in-toto Statement's subjects). `list_path` is the file that
/// lists them, which is not an extra file.
pub fn check_files(root: &Path, dir: &str, artifacts: &[Artifact], list_path: &Path) -> FileCheck {
    let mut reasons = Vec::new();
    let mut rejected = Vec::new();
    let mut walked = Walked::default();
    match check_rel_path(dir) {
        // A packed directory that is gone, or reached through a link, is a
        // failure in itself; its files are then each checked on their own.
        Ok(()) => match walk_packed_dir(root, dir, artifacts, list_path) {
            Ok(w) => walked = w,
            Err(e) => reasons.push(format!("cannot list {dir}: {e:#}")),
        },
        Err(reason) => rejected.push(Rejected {
            path: dir.to_string(),
            reason: format!("packed directory: {reason}"),
        }),
    }
    let safe = confine(root, dir, artifacts, &walked, &mut rejected);
    let (missing, mismatch) = compare(root, artifacts, &safe, &mut walked, &mut rejected);
    reasons.extend(file_reasons(&missing, &mismatch, &walked.extra, &rejected));
    FileCheck {
        missing,
        mismatch,
        extra: walked.extra,
        rejected,
        reasons,
    }
}

/// Whether the bundle's signature is the key's signature of its manifest.
fn signature_ok(bundle: &Bundle, key: &Key) -> bool {
    let m = &bundle.manifest;
    if m.signing.algo == ALGO_SEED {
        seed_signature_ok(m, &bundle.signature, key)
    } else {
        let sig = util::unhex(&bundle.signature).expect("validated by parse_bundle");
        canonical_mac(m, key).verify_slice(&sig).is_ok()
    }
}

/// What the walk of the packed directory found, joined with the manifest.
#[derive(Default)]
struct Walked {
    /// Every regular file under the packed directory, with the hash of each
    /// listed one.
    found: Found,
    /// For each artifact, where in `found` the walk hashed it, if it did.
    at: Vec<Option<u32>>,
    /// Files the manifest does not list.
    extra: Vec<String>,
}

impl Walked {
    /// Where in `found` artifact `i` was hashed by the walk.
    fn at(&self, i: usize) -> Option<usize> {
        self.at.get(i).copied().flatten().map(|k| k as usize)
    }
}

/// The listed paths, to look a found file up by. A sorted list (as this kit
/// packs it) is searched in place, within the range of the file's directory:
/// the walk asks for every file, and a binary search over all 100,000 paths
/// of set c takes 17 string comparisons a file, one over a directory's 100
/// takes 7. Any other order gets a map of all paths.
struct Listed<'a> {
    artifacts: &'a [Artifact],
    /// Sorted: where each directory's files lie (first, one past the last).
    dirs: HashMap<&'a str, (usize, usize)>,
    /// Not sorted: every path's index.
    map: Option<HashMap<&'a str, usize>>,
}

/// The directory part of a `/`-separated path (empty for a bare name).
fn dir_of(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

impl<'a> Listed<'a> {
    fn new(artifacts: &'a [Artifact]) -> Listed<'a> {
        let mut dirs = HashMap::new();
        let mut map = None;
        if is_sorted(artifacts) {
            // The files of a directory lie between its first and its last
            // (files of its subdirectories may lie between, still in order).
            for (i, a) in artifacts.iter().enumerate() {
                dirs.entry(dir_of(&a.path)).or_insert((i, i + 1)).1 = i + 1;
            }
        } else {
            map = Some(
                artifacts
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (a.path.as_str(), i))
                    .collect(),
            );
        }
        Listed {
            artifacts,
            dirs,
            map,
        }
    }

    /// The index of an artifact listed as `path`.
    fn index(&self, path: &str) -> Option<usize> {
        if let Some(map) = &self.map {
            return map.get(path).copied();
        }
        let &(first, end) = self.dirs.get(dir_of(path))?;
        self.artifacts[first..end]
            .binary_search_by(|a| a.path.as_str().cmp(path))
            .ok()
            .map(|k| first + k)
    }
}

/// One parallel pass over the packed directory lists it (for `extra`) and
/// hashes the listed files it finds, recording each by its artifact's index.
fn walk_packed_dir(
    root: &Path,
    dir: &str,
    artifacts: &[Artifact],
    bundle_path: &Path,
) -> anyhow::Result<Walked> {
    let listed = Listed::new(artifacts);
    let skip = OwnBundle::new(root, &root.join(bundle_path));
    // (An index beyond u32 is hashed later, by path.)
    let want = |p: &str| match listed.index(p).map(u32::try_from) {
        Some(Ok(i)) if check_rel_path(p).is_ok() => Want::HashAs(i),
        _ => Want::Skip,
    };
    check_real_dir(root, dir)?;
    let found = walk(root, dir, &skip, &want, artifacts.len())?;
    // A file found by the walk was reached through real directories only, so
    // once the packed directory's own components are known to hold no
    // symbolic link, its path needs no further checks.
    let clean = check_no_escape(root, dir).is_ok();
    Ok(join(artifacts.len(), &listed, found, clean))
}

/// Joins what the walk found with the list: a hashed file by its index, any
/// other by its path (unlisted ones are `extra`). The walk's hashes count for
/// the artifacts only when `clean`.
fn join(artifacts: usize, listed: &Listed, found: Found, clean: bool) -> Walked {
    let mut at = vec![None; artifacts];
    let mut extra = Vec::new();
    for (k, (p, hashed, i)) in found.iter().enumerate() {
        if p.is_empty() {
            if clean && hashed.is_some() {
                at[*i as usize] = u32::try_from(k).ok();
            }
        } else if listed.index(p).is_none() {
            extra.push(p.clone());
        }
    }
    Walked { found, at, extra }
}

/// Rejects every listed path that is not safe to read (see `paths.rs`), with
/// its reason; returns the indices of the others.
fn confine(
    root: &Path,
    dir: &str,
    artifacts: &[Artifact],
    walked: &Walked,
    rejected: &mut Vec<Rejected>,
) -> Vec<usize> {
    let mut safe = Vec::new();
    for (i, a) in artifacts.iter().enumerate() {
        let outside = !a.path.starts_with(dir) || a.path.as_bytes().get(dir.len()) != Some(&b'/');
        let checked = check_rel_path(&a.path).and_then(|()| {
            if outside {
                Err(format!("outside the packed directory {dir:?}"))
            } else if walked.at(i).is_some() {
                Ok(())
            } else {
                check_no_escape(root, &a.path)
            }
        });
        match checked {
            Ok(()) => safe.push(i),
            Err(reason) => rejected.push(Rejected {
                path: a.path.clone(),
                reason,
            }),
        }
    }
    safe
}

/// Compares the hash and size of each safe artifact with the manifest;
/// returns the missing and the changed ones. Listed files the walk did not
/// hash (gone, or not regular files) are read one by one, which reports why.
fn compare(
    root: &Path,
    artifacts: &[Artifact],
    safe: &[usize],
    walked: &mut Walked,
    rejected: &mut Vec<Rejected>,
) -> (Vec<String>, Vec<String>) {
    let rest: Vec<&str> = safe
        .iter()
        .filter(|&&i| walked.at(i).is_none())
        .map(|&i| artifacts[i].path.as_str())
        .collect();
    let mut rest = hash_all(root, &rest).into_iter();
    let mut missing = Vec::new();
    let mut mismatch = Vec::new();
    for &i in safe {
        let a = &artifacts[i];
        let got = match walked.at(i) {
            Some(k) => walked.found[k].1.take(),
            None => rest.next(),
        };
        match got.expect("every safe path is hashed once") {
            Ok((sha, size))
                if util::hex_eq(&sha, &a.sha256) && a.size.is_none_or(|s| s == size) => {}
            Ok(_) => mismatch.push(a.path.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(a.path.clone()),
            Err(e) => rejected.push(Rejected {
                path: a.path.clone(),
                reason: format!("cannot read: {e}"),
            }),
        }
    }
    (missing, mismatch)
}

/// The reasons, in words, for files that do not match.
fn file_reasons(
    missing: &[String],
    mismatch: &[String],
    extra: &[String],
    rejected: &[Rejected],
) -> Vec<String> {
    let mut reasons = Vec::new();
    for (what, list) in [
        ("missing", missing),
        ("changed", mismatch),
        ("not in the manifest", extra),
    ] {
        if !list.is_empty() {
            reasons.push(format!("{} file(s) {what}", list.len()));
        }
    }
    if !rejected.is_empty() {
        reasons.push(format!(
            "{} path(s) rejected as unsafe or unreadable",
            rejected.len()
        ));
    }
    reasons
}

/// `verify` from the command line: prints the verdict as JSON; exit 0 when
/// ok, else 2 with the reasons on stderr.
pub fn run_verify(root: &Path, args: &crate::flags::VerifyArgs, prog: &str) -> Result<u8> {
    // A bundle's key problems come before its file's (an envelope needs none).
    let key = Key::from_env();
    // A valid bundle in a regular file is parsed as it is read; anything else
    // (an envelope, a malformed bundle) is read whole, told apart by its keys
    // and parsed as before.
    let bundle = match read_streamed_bundle(root, &args.file) {
        Some(bundle) => bundle,
        None => {
            let bytes = match read_limited_bundle(root, &args.file) {
                Ok(bytes) => bytes,
                Err(e) => return Err(key.err().unwrap_or(e)),
            };
            if crate::attest::is_envelope(&bytes) {
                return crate::attest::run_verify(root, args, &bytes);
            }
            parse_bundle(&bytes)
                .with_context(|| format!("malformed bundle {}", args.file.display()))
                .map_err(|e| util::fail(exit::NOT_VERIFIED, e))?
        }
    };
    if args.key.is_some() {
        return Err(util::fail(
            exit::USAGE,
            anyhow::anyhow!(
                "--key verifies DSSE envelopes; {} is an HMAC bundle (its key is \
                 MC_SIGNING_KEY or MC_SIGNING_KEY_FILE)",
                args.file.display()
            ),
        ));
    }
    let key = key?;
    key.check_dev(args.strict, prog)?;
    let verdict = verify(root, &bundle, &args.file, &key, args.strict);
    util::println_stdout(&serde_json::to_string_pretty(&verdict).expect("a verdict serialises"))?;
    if verdict.ok && verdict.weak_signature {
        eprintln!(
            "{prog}: warning: {} uses the seed kit's weak signature; re-pack it with this kit",
            args.file.display()
        );
    }
    if !verdict.ok {
        return Err(util::fail(
            exit::NOT_VERIFIED,
            anyhow::anyhow!(
                "{} does not verify: {}",
                args.file.display(),
                verdict.reasons.join("; ")
            ),
        ));
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{pack, sign, PackOptions};

    fn pack_in(root: &Path) -> Bundle {
        let opts = PackOptions {
            root: root.to_path_buf(),
            dir: "out".into(),
            out: "dist/bundle.json".into(),
            version: "v1".into(),
            ts: 7,
        };
        pack(&opts, &Key::new("k", "env:MC_SIGNING_KEY")).unwrap()
    }

    #[cfg(unix)]
    #[test]
    fn verify_accepts_artifacts_in_any_order() {
        let tmp = tempfile::tempdir().unwrap();
        for name in ["a", "b", "c/d"] {
            std::fs::create_dir_all(tmp.path().join("out/c")).unwrap();
            std::fs::write(tmp.path().join("out").join(name), name).unwrap();
        }
        let key = Key::new("k", "env:MC_SIGNING_KEY");
        let mut manifest = pack_in(tmp.path()).manifest;
        manifest.artifacts.reverse();
        let signature = sign(&manifest, &key);
        let bundle = Bundle {
            manifest,
            signature,
        };
        let v = verify(
            tmp.path(),
            &bundle,
            Path::new("dist/bundle.json"),
            &key,
            true,
        );
        assert!(v.ok, "{v:?}");
        std::fs::write(tmp.path().join("out/b"), "changed").unwrap();
        std::fs::write(tmp.path().join("out/new"), "new").unwrap();
        let v = verify(
            tmp.path(),
            &bundle,
            Path::new("dist/bundle.json"),
            &key,
            true,
        );
        assert_eq!(
            (v.mismatch, v.extra),
            (vec!["out/b".to_string()], vec!["out/new".to_string()])
        );
    }

    #[cfg(unix)]
    #[test]
    fn packed_dir_behind_a_symbolic_link_is_rejected_file_by_file() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("out")).unwrap();
        std::fs::write(tmp.path().join("out/a"), "a").unwrap();
        let bundle = pack_in(tmp.path());
        std::fs::rename(tmp.path().join("out"), tmp.path().join("real")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("real"), tmp.path().join("out")).unwrap();
        let key = Key::new("k", "env:MC_SIGNING_KEY");
        let v = verify(
            tmp.path(),
            &bundle,
            Path::new("dist/bundle.json"),
            &key,
            false,
        );
        assert!(!v.ok);
        assert_eq!(v.rejected.len(), 1, "{v:?}");
        assert_eq!(v.rejected[0].path, "out/a");
        assert!(v.rejected[0].reason.contains("symbolic link"), "{v:?}");
    }

    #[test]
    fn listed_files_are_found_by_directory_in_any_order() {
        let paths = [
            "out/a/a.txt",
            "out/a/b/y.txt",
            "out/a/x.txt",
            "out/top.txt",
            "out/z/q",
        ];
        for order in [&[0, 1, 2, 3, 4][..], &[4, 2, 0, 3, 1][..]] {
            let artifacts: Vec<Artifact> = order
                .iter()
                .map(|&i| Artifact {
                    path: paths[i].to_string(),
                    sha256: "0".repeat(64),
                    size: Some(1),
                })
                .collect();
            let listed = Listed::new(&artifacts);
            for (i, a) in artifacts.iter().enumerate() {
                assert_eq!(listed.index(&a.path), Some(i), "{}", a.path);
            }
            for other in ["out/a/b.txt", "out/a/b", "out/b/y.txt", "top.txt", "out/z"] {
                assert_eq!(listed.index(other), None, "{other}");
            }
        }
    }
}
