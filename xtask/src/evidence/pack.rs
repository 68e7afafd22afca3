//! `pack`: hash every regular file under a directory, sign the manifest, and
//! write the bundle atomically.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::bundle::{sign, Artifact, Bundle, Manifest, Signing, ALGO_HMAC};
use super::paths::{check_real_dir, check_rel_path, relative_dir, OwnBundle};
use super::walk::{walk, Want};
use super::Key;
use crate::util::{self, exit};

/// What `pack` needs besides the key.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// The project root: artifact paths are relative to it.
    pub root: PathBuf,
    /// The directory to pack, relative to `root`.
    pub dir: PathBuf,
    /// Where the bundle goes (relative paths are taken from `root`).
    pub out: PathBuf,
    /// The manifest's `version`.
    pub version: String,
    /// The manifest's `ts`.
    pub ts: u64,
}

/// Hashes every regular file under `opts.dir`, signs the manifest and writes
/// the bundle atomically to `opts.out`. Returns the bundle.
pub fn pack(opts: &PackOptions, key: &Key) -> Result<Bundle> {
    let out = opts.root.join(&opts.out);
    let (dir_rel, artifacts) = collect(&opts.root, &opts.dir, &out)?;
    let manifest = Manifest {
        artifacts,
        dir: Some(dir_rel),
        signing: Signing {
            algo: ALGO_HMAC.to_string(),
            key_ref: key.key_ref.clone(),
        },
        ts: opts.ts,
        version: opts.version.clone(),
    };
    let signature = sign(&manifest, key);
    let bundle = Bundle {
        manifest,
        signature,
    };
    // Streamed to the file: a bundle of 100,000 files is 16 MB of text.
    util::write_atomic_with(&out, |w| {
        serde_json::to_writer_pretty(&mut *w, &bundle)?;
        w.write_all(b"\n")
    })?;
    Ok(bundle)
}

/// Hashes every regular file under `root/dir` (the file at `out` and its
/// temporary files excepted): the packed directory as a `/`-separated
/// relative path, and the files in path order. What `pack` signs, whatever
/// the format (`attest` signs the same list as an in-toto Statement).
pub fn collect(root: &Path, dir: &Path, out: &Path) -> Result<(String, Vec<Artifact>)> {
    let dir_rel = relative_dir(dir)?;
    let skip = OwnBundle::new(root, out);
    check_real_dir(root, &dir_rel)?;
    let found = walk(root, &dir_rel, &skip, &|_| Want::Hash, 0)?;
    let mut artifacts = Vec::with_capacity(found.len());
    for (path, hashed, _) in found {
        if let Err(reason) = check_rel_path(&path) {
            bail!("{path}: verify would reject this file name ({reason}); rename it");
        }
        let hashed = hashed.expect("pack hashes every file it finds");
        let (sha256, size) = hashed.with_context(|| format!("cannot hash {path}"))?;
        artifacts.push(Artifact {
            path,
            sha256: util::hex(&sha256),
            size: Some(size),
        });
    }
    Ok((dir_rel, artifacts))
}

/// `pack` from the command line: relative paths are taken from `root`.
pub fn run_pack(root: &Path, args: &crate::flags::PackArgs, prog: &str) -> Result<u8> {
    if args.format == crate::flags::PackFormat::Dsse {
        return crate::attest::run_pack(root, args, prog);
    }
    let key = Key::from_env()?;
    key.check_dev(args.strict, prog)?;
    let opts = PackOptions {
        root: root.to_path_buf(),
        dir: args.dir.clone(),
        out: args.out.clone(),
        version: util::version_from_env(),
        ts: util::now_epoch()?,
    };
    let bundle = pack(&opts, &key)?;
    util::println_stdout(&format!(
        "wrote evidence bundle → {} ({} files)",
        args.out.display(),
        bundle.manifest.artifacts.len()
    ))?;
    Ok(exit::OK)
}
