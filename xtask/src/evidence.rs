//! Signed evidence bundles: `pack` hashes every regular file under a directory
//! into a manifest and signs it; `verify` checks the signature and every file.
//!
//! # The bundle
//!
//! ```json
//! {"manifest": {"artifacts": [{"path": "out/sample.txt", "sha256": "…", "size": 15}],
//!               "dir": "out", "signing": {"algo": "hmac-sha256", "keyRef": "env:MC_SIGNING_KEY"},
//!               "ts": 1700000000, "version": "v0.3.2-mc"},
//!  "signature": "<64 hex digits>"}
//! ```
//!
//! # The canonical form that is signed
//!
//! The signature is HMAC-SHA256, keyed with the signing key, over the manifest
//! serialised as compact JSON (no whitespace) with object keys in ascending
//! byte order, strings escaped as JSON requires (`"`, `\` and control
//! characters only; other characters as raw UTF-8) and numbers as plain
//! decimal integers. The manifest has a fixed set of fields, so unknown or
//! duplicate fields make a bundle malformed rather than silently unsigned.
//! Re-indenting or re-ordering the bundle's JSON therefore keeps it valid, and
//! changing any value breaks it.
//!
//! The seed kit's bundles (`"algo": "sha256(HMAC-sim)"`: sha256 of the key
//! followed by Python's `json.dumps(manifest, indent=2)`) still verify, flagged
//! as a weak signature; `--strict` rejects them.
//!
//! # Why it is shaped so
//!
//! Files are hashed in parallel, one worker per core, each streaming its files
//! through one cache-sized buffer, so packing runs at the speed of SHA-256 on
//! every core and memory does not grow with file sizes. The directory walk is
//! shared by the same workers (one queue of directories to list and files to
//! hash), so a tree of 100,000 small files is listed in parallel too, and the
//! bundle and its signature are streamed rather than built in memory.
//! Verification lists and hashes in that same single pass. Verification never reads
//! outside the project root: absolute paths, `..`, paths outside the packed
//! directory and symbolic links are rejected with their reason before any read.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use anyhow::{bail, Context, Result};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::util::{self, exit};

/// The seed kit's development key, used (with a warning) when no key is set.
pub const DEV_KEY: &str = "dev-key-not-for-prod";
/// The signature algorithm of bundles made by this kit.
pub const ALGO_HMAC: &str = "hmac-sha256";
/// The seed kit's algorithm name: sha256(key + text), not an HMAC.
pub const ALGO_SEED: &str = "sha256(HMAC-sim)";
/// The largest bundle `verify` reads (a bundle lists about 200 bytes per
/// file, so this is over a million files): a larger or endless file is
/// refused rather than read into memory.
pub const MAX_BUNDLE: u64 = 256 << 20;
/// The largest key file read from `MC_SIGNING_KEY_FILE`.
pub const MAX_KEY_FILE: u64 = 1 << 20;

/// A signing key. Its bytes are never printed: `Debug` shows only where it
/// came from.
pub struct Key {
    bytes: Vec<u8>,
    key_ref: String,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("key_ref", &self.key_ref)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// A key given directly (for library users and tests).
    pub fn new(bytes: impl Into<Vec<u8>>, key_ref: impl Into<String>) -> Key {
        Key {
            bytes: bytes.into(),
            key_ref: key_ref.into(),
        }
    }

    /// The key from `MC_SIGNING_KEY`, else from the file named by
    /// `MC_SIGNING_KEY_FILE` (one trailing newline is dropped), else the
    /// development key.
    pub fn from_env() -> Result<Key> {
        let inline = std::env::var_os("MC_SIGNING_KEY");
        let file = std::env::var_os("MC_SIGNING_KEY_FILE");
        let key = match (inline, file) {
            (Some(_), Some(_)) => {
                bail!("both MC_SIGNING_KEY and MC_SIGNING_KEY_FILE are set; unset one of them")
            }
            (Some(k), None) => {
                let k = k
                    .into_string()
                    .map_err(|_| anyhow::anyhow!("MC_SIGNING_KEY is not valid UTF-8"))?;
                Key::new(k, "env:MC_SIGNING_KEY")
            }
            (None, Some(path)) => {
                let path = PathBuf::from(path);
                let mut bytes = util::read_limited(&path, MAX_KEY_FILE).with_context(|| {
                    format!(
                        "cannot read the signing key file {} (MC_SIGNING_KEY_FILE)",
                        path.display()
                    )
                })?;
                if bytes.ends_with(b"\n") {
                    bytes.pop();
                    if bytes.ends_with(b"\r") {
                        bytes.pop();
                    }
                }
                Key::new(bytes, "env:MC_SIGNING_KEY_FILE")
            }
            (None, None) => Key::new(DEV_KEY, "env:MC_SIGNING_KEY"),
        };
        if key.bytes.is_empty() {
            bail!(
                "the signing key is empty; set MC_SIGNING_KEY or MC_SIGNING_KEY_FILE to a secret"
            );
        }
        Ok(key)
    }

    /// Whether this is the seed kit's public development key.
    pub fn is_dev(&self) -> bool {
        self.bytes == DEV_KEY.as_bytes()
    }

    /// Refuses the development key under `strict`, and warns about it otherwise.
    pub fn check_dev(&self, strict: bool, prog: &str) -> Result<()> {
        if self.is_dev() {
            if strict {
                bail!("--strict refuses the development signing key; set MC_SIGNING_KEY or MC_SIGNING_KEY_FILE");
            }
            eprintln!(
                "{prog}: warning: signing with the development key (not for production); \
                 set MC_SIGNING_KEY or MC_SIGNING_KEY_FILE"
            );
        }
        Ok(())
    }

    fn hmac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.bytes).expect("HMAC takes keys of any size")
    }
}

/// The signed part of a bundle. Fields are declared in ascending byte order
/// of their names, so serde_json's compact output of this struct *is* the
/// canonical form (a test re-derives it by sorting keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(deserialize_with = "artifact_objects")]
    pub artifacts: Vec<Artifact>,
    /// The packed directory, relative to the project root (absent in the
    /// seed's bundles, which always packed `out`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    #[serde(deserialize_with = "object::<_, Signing>")]
    pub signing: Signing,
    pub ts: u64,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub path: String,
    pub sha256: String,
    /// Size in bytes (absent in the seed's bundles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signing {
    pub algo: String,
    #[serde(rename = "keyRef")]
    pub key_ref: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    #[serde(deserialize_with = "object::<_, Manifest>")]
    pub manifest: Manifest,
    pub signature: String,
}

impl Manifest {
    /// The bytes that are signed: see the module documentation.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serialises")
    }

    /// Writes [`Manifest::canonical`] to `w`.
    pub fn write_canonical(&self, w: impl Write) -> std::io::Result<()> {
        serde_json::to_writer(w, self).map_err(std::io::Error::from)
    }

    /// The packed directory (`out` for the seed's bundles).
    pub fn packed_dir(&self) -> &str {
        self.dir.as_deref().unwrap_or("out")
    }
}

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
    let root = &opts.root;
    let dir_rel = relative_dir(&opts.dir)?;
    let out = root.join(&opts.out);
    let skip = OwnBundle::new(root, &out);
    check_real_dir(root, &dir_rel)?;
    let found = walk(root, &dir_rel, &skip, &|_| true)?;
    let mut artifacts = Vec::with_capacity(found.len());
    for (path, hashed) in found {
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

/// The signature of `manifest`: HMAC-SHA256 of its canonical form, as hex.
pub fn sign(manifest: &Manifest, key: &Key) -> String {
    util::hex(&canonical_mac(manifest, key).finalize().into_bytes())
}

/// The seed kit's weak signature of `manifest` (see the module
/// documentation). Only for migration tools and tests: this kit never signs
/// with it.
pub fn sign_seed(manifest: &Manifest, key: &Key) -> String {
    seed_signature(manifest, key)
}

/// The HMAC of `manifest`'s canonical form, fed as it is serialised rather
/// than from a copy of it in memory.
fn canonical_mac(manifest: &Manifest, key: &Key) -> Hmac<Sha256> {
    struct MacWriter(Hmac<Sha256>);
    impl Write for MacWriter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = std::io::BufWriter::with_capacity(64 * 1024, MacWriter(key.hmac()));
    manifest
        .write_canonical(&mut w)
        .expect("a manifest always serialises");
    match w.into_inner() {
        Ok(MacWriter(mac)) => mac,
        Err(_) => unreachable!("writing to a MAC cannot fail"),
    }
}

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

/// Reads and parses the bundle at `root/file`; any problem is a one-line
/// error naming `file`, with exit code 2.
pub fn read_bundle(root: &Path, file: &Path) -> Result<Bundle> {
    let text = util::read_limited(&root.join(file), MAX_BUNDLE)
        .with_context(|| format!("cannot read {}", file.display()));
    let text = text.map_err(|e| util::fail(exit::NOT_VERIFIED, e))?;
    parse_bundle(&text)
        .with_context(|| format!("malformed bundle {}", file.display()))
        .map_err(|e| util::fail(exit::NOT_VERIFIED, e))
}

/// Parses and validates a bundle's bytes.
pub fn parse_bundle(bytes: &[u8]) -> Result<Bundle> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let bundle: Bundle = object(&mut de)?;
    de.end()?;
    let m = &bundle.manifest;
    if m.signing.algo != ALGO_HMAC && m.signing.algo != ALGO_SEED {
        bail!(
            "unknown signing algo {:?} (expected {ALGO_HMAC:?} or {ALGO_SEED:?})",
            m.signing.algo
        );
    }
    if !is_hex64(&bundle.signature) {
        bail!("signature is not 64 lowercase hex digits");
    }
    if m.signing.algo == ALGO_HMAC && m.dir.is_none() {
        bail!("manifest has no `dir`");
    }
    let mut seen = BTreeSet::new();
    for a in &m.artifacts {
        if !is_hex64(&a.sha256) {
            bail!(
                "artifact {:?}: sha256 is not 64 lowercase hex digits",
                a.path
            );
        }
        if m.signing.algo == ALGO_HMAC && a.size.is_none() {
            bail!("artifact {:?}: missing `size`", a.path);
        }
        if !seen.insert(a.path.as_str()) {
            bail!("artifact {:?} is listed twice", a.path);
        }
    }
    Ok(bundle)
}

/// Deserialises a `T` from a JSON object only. serde's derived structs also
/// accept a JSON array of the fields in order, which would let `[manifest,
/// signature]` pass for a bundle: evidence has exactly one spelling.
fn object<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Named,
{
    struct Only<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de> + Named> serde::de::Visitor<'de> for Only<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{} as a JSON object", T::WHAT)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            map: A,
        ) -> std::result::Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_map(Only(std::marker::PhantomData))
}

/// `artifacts`: an array of objects (see [`object`]).
fn artifact_objects<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<Artifact>, D::Error> {
    struct One(Artifact);
    impl<'de> Deserialize<'de> for One {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<One, D::Error> {
            object(d).map(One)
        }
    }
    Ok(Vec::<One>::deserialize(d)?
        .into_iter()
        .map(|o| o.0)
        .collect())
}

/// What a part of a bundle is called in errors.
trait Named {
    const WHAT: &'static str;
}
impl Named for Bundle {
    const WHAT: &'static str = "the bundle";
}
impl Named for Manifest {
    const WHAT: &'static str = "`manifest`";
}
impl Named for Signing {
    const WHAT: &'static str = "`signing`";
}
impl Named for Artifact {
    const WHAT: &'static str = "each artifact";
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
    let signature_ok = if weak {
        seed_signature_ok(m, &bundle.signature, key)
    } else {
        let sig = unhex(&bundle.signature).expect("validated by parse_bundle");
        canonical_mac(m, key).verify_slice(&sig).is_ok()
    };
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

    let mut rejected = Vec::new();
    let dir = m.packed_dir();
    let dir_ok = match check_rel_path(dir) {
        Ok(()) => true,
        Err(reason) => {
            rejected.push(Rejected {
                path: dir.to_string(),
                reason: format!("packed directory: {reason}"),
            });
            false
        }
    };

    // One parallel pass over the packed directory lists it (for `extra`) and
    // hashes the listed files it finds. A file found by the walk was reached
    // through real directories only, so once the packed directory's own
    // components are known to hold no symbolic link, its path needs no
    // further checks.
    let listed: HashSet<&str> = m.artifacts.iter().map(|a| a.path.as_str()).collect();
    // What the walk found, and for each artifact the index of its hash in it.
    let mut found: Found = Vec::new();
    let mut walked: Vec<u32> = Vec::new();
    let mut extra = Vec::new();
    if dir_ok {
        let skip = OwnBundle::new(root, &root.join(bundle_path));
        let want = |p: &str| listed.contains(p) && check_rel_path(p).is_ok();
        // A packed directory that is gone, or reached through a link, is a
        // failure in itself; its files are then each checked on their own.
        let walked_dir = check_real_dir(root, dir).and_then(|()| walk(root, dir, &skip, &want));
        match walked_dir {
            Ok(f) => {
                found = f;
                let clean = check_no_escape(root, dir).is_ok();
                walked = vec![u32::MAX; m.artifacts.len()];
                // Both sides in path order (a bundle this kit packed already
                // is), then joined in one pass.
                let mut order: Vec<usize> = (0..m.artifacts.len()).collect();
                let path = |i: usize| m.artifacts[i].path.as_str();
                if !order.windows(2).all(|w| path(w[0]) <= path(w[1])) {
                    order.sort_unstable_by(|&i, &j| path(i).cmp(path(j)));
                }
                let mut listed_iter = order.into_iter().peekable();
                for (k, (p, hashed)) in found.iter().enumerate() {
                    while listed_iter.next_if(|&i| path(i) < p.as_str()).is_some() {}
                    match listed_iter.next_if(|&i| path(i) == p.as_str()) {
                        Some(i) if clean && hashed.is_some() => {
                            walked[i] = u32::try_from(k).unwrap_or(u32::MAX)
                        }
                        Some(_) => {}
                        None => extra.push(p.clone()),
                    }
                }
            }
            Err(e) => reasons.push(format!("cannot list {dir}: {e:#}")),
        }
    }
    drop(listed);
    let walked_at = |i: usize| walked.get(i).copied().filter(|&k| k != u32::MAX);

    let mut safe = Vec::new();
    for (i, a) in m.artifacts.iter().enumerate() {
        let outside = !a.path.starts_with(dir) || a.path.as_bytes().get(dir.len()) != Some(&b'/');
        let checked = check_rel_path(&a.path).and_then(|()| {
            if outside {
                Err(format!("outside the packed directory {dir:?}"))
            } else if walked_at(i).is_some() {
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

    // Listed files the walk did not hash (gone, or not regular files) are
    // read one by one, which reports why.
    let rest: Vec<&str> = safe
        .iter()
        .filter(|&&i| walked_at(i).is_none())
        .map(|&i| m.artifacts[i].path.as_str())
        .collect();
    let mut rest = hash_all(root, &rest).into_iter();
    let mut missing = Vec::new();
    let mut mismatch = Vec::new();
    for i in safe {
        let a = &m.artifacts[i];
        let got = match walked_at(i) {
            Some(k) => found[k as usize].1.take(),
            None => rest.next(),
        };
        match got.expect("every safe path is hashed once") {
            Ok((sha, size)) if hex_eq(&sha, &a.sha256) && a.size.is_none_or(|s| s == size) => {}
            Ok(_) => mismatch.push(a.path.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(a.path.clone()),
            Err(e) => rejected.push(Rejected {
                path: a.path.clone(),
                reason: format!("cannot read: {e}"),
            }),
        }
    }

    for (what, list) in [
        ("missing", &missing),
        ("changed", &mismatch),
        ("not in the manifest", &extra),
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
    let ok = reasons.is_empty();
    Verdict {
        signature_ok,
        algo: m.signing.algo.clone(),
        weak_signature: weak,
        missing,
        mismatch,
        extra,
        rejected,
        reasons,
        ok,
    }
}

/// `pack` from the command line: relative paths are taken from `root`.
pub fn run_pack(root: &Path, args: &crate::flags::PackArgs, prog: &str) -> Result<u8> {
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
    println!(
        "wrote evidence bundle → {} ({} files)",
        args.out.display(),
        bundle.manifest.artifacts.len()
    );
    Ok(exit::OK)
}

/// `verify` from the command line: prints the verdict as JSON; exit 0 when ok, 2 when not.
pub fn run_verify(root: &Path, args: &crate::flags::VerifyArgs, prog: &str) -> Result<u8> {
    let key = Key::from_env()?;
    if key.is_dev() && args.strict {
        return Err(util::fail(
            exit::NOT_VERIFIED,
            anyhow::anyhow!("--strict refuses the development signing key; set MC_SIGNING_KEY or MC_SIGNING_KEY_FILE"),
        ));
    }
    key.check_dev(false, prog)?;
    let bundle = read_bundle(root, &args.file)?;
    let verdict = verify(root, &bundle, &args.file, &key, args.strict);
    println!(
        "{}",
        serde_json::to_string_pretty(&verdict).expect("a verdict serialises")
    );
    if verdict.weak_signature && !args.strict {
        eprintln!(
            "{prog}: warning: {} uses the seed kit's weak signature; re-pack it with this kit",
            args.file.display()
        );
    }
    Ok(if verdict.ok {
        exit::OK
    } else {
        exit::NOT_VERIFIED
    })
}

/// The bundle file being written and its temporary files, which are never
/// listed in (or counted as extra to) their own manifest.
///
/// The bundle's directory is resolved through symbolic links first, so a
/// bundle written through a linked directory (`--out link/b.json` with `link`
/// pointing into the packed directory) is still recognised. Only names of
/// exactly the shape [`util::write_atomic`] gives its temporary files are
/// skipped: any other file, whatever its name, is evidence.
struct OwnBundle {
    rel: Option<String>,
    tmp_prefix: Option<String>,
}

impl OwnBundle {
    fn new(root: &Path, out: &Path) -> OwnBundle {
        let resolved = match (out.parent(), out.file_name()) {
            (Some(parent), Some(name)) => std::fs::canonicalize(parent).ok().map(|p| p.join(name)),
            _ => None,
        };
        let rel = std::fs::canonicalize(root)
            .ok()
            .zip(resolved)
            .and_then(|(root, out)| lexical_rel(&root, &out))
            .or_else(|| lexical_rel(root, out));
        let tmp_prefix = rel.as_ref().map(|r| {
            let (parent, name) = r.rsplit_once('/').unwrap_or(("", r));
            let prefix = util::tmp_prefix(name.as_ref());
            if parent.is_empty() {
                prefix
            } else {
                format!("{parent}/{prefix}")
            }
        });
        OwnBundle { rel, tmp_prefix }
    }

    fn skips(&self, rel: &str) -> bool {
        self.rel.as_deref() == Some(rel)
            || self
                .tmp_prefix
                .as_deref()
                .is_some_and(|p| util::is_tmp_name(rel, p))
    }
}

/// `path` relative to `root` as a `/`-separated string, if it lies lexically
/// under it (both are made absolute first).
fn lexical_rel(root: &Path, path: &Path) -> Option<String> {
    let abs = |p: &Path| -> Option<PathBuf> {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().ok()?.join(p)
        };
        let mut out = PathBuf::new();
        for c in p.components() {
            match c {
                Component::ParentDir => {
                    out.pop();
                }
                Component::CurDir => {}
                c => out.push(c),
            }
        }
        Some(out)
    };
    let (root, path) = (abs(root)?, abs(path)?);
    let rel = path.strip_prefix(&root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// Validates `--dir` and returns it as a `/`-separated relative path.
fn relative_dir(dir: &Path) -> Result<String> {
    let mut parts = Vec::new();
    for c in dir.components() {
        match c {
            Component::Normal(s) => parts.push(
                s.to_str()
                    .with_context(|| format!("--dir {}: not valid UTF-8", dir.display()))?,
            ),
            Component::CurDir => {}
            _ => bail!(
                "--dir {}: must be a relative path inside the project root, without `..`",
                dir.display()
            ),
        }
    }
    if parts.is_empty() {
        bail!(
            "--dir {}: must name a directory below the project root",
            dir.display()
        );
    }
    Ok(parts.join("/"))
}

/// Refuses a packed directory reached through a symbolic link: `verify`
/// rejects every path through a link, and a link could lead pack outside the
/// project root.
fn check_real_dir(root: &Path, dir: &str) -> Result<()> {
    let mut top = root.to_path_buf();
    for (i, part) in dir.split('/').enumerate() {
        top.push(part);
        let meta = std::fs::symlink_metadata(&top)
            .with_context(|| format!("cannot read directory {dir}"))?;
        if meta.file_type().is_symlink() {
            bail!(
                "{dir}: {} is a symbolic link; evidence is packed from a real directory \
                 inside the project root",
                dir.split('/').take(i + 1).collect::<Vec<_>>().join("/")
            );
        }
        if !meta.is_dir() {
            bail!("{dir} is not a directory");
        }
    }
    Ok(())
}

/// What a walk found: every regular file under the walked directory, as a
/// `/`-separated path relative to the root, with its hash when it was asked for.
type Found = Vec<(String, Option<Hashed>)>;

/// One unit of a walk's work: list a directory, or hash a file.
enum Task {
    Dir(String),
    /// A file's path, and its directory when open: on Unix the file is opened
    /// relative to it, so the kernel resolves one name rather than the path.
    File(String, Option<Arc<File>>),
}

/// The shared state of a walk's workers.
struct WalkQueue {
    tasks: Vec<Task>,
    /// Workers holding a task: the walk is over when none does and no task is left.
    busy: usize,
    /// A directory could not be listed: the walk still lists (to report the
    /// first failure by path) but hashes nothing more.
    failed: bool,
}

/// Walks `root/dir` on every core, hashing each regular file for which `want`
/// holds as soon as it is found; results sorted by path. Symbolic links and
/// other special files are not evidence and are skipped (directories are
/// entered only when they are real directories); non-UTF-8 names are an error
/// naming the file. Of several listing errors, the one of the first path is
/// reported.
///
/// Directories and files go through one queue, so the walk of a deep tree is
/// spread over the workers as well as the hashing of a few large files.
fn walk(
    root: &Path,
    dir: &str,
    skip: &OwnBundle,
    want: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Found> {
    let top = root.join(dir);
    let meta = std::fs::metadata(&top).with_context(|| format!("cannot read directory {dir}"))?;
    if !meta.is_dir() {
        bail!("{dir} is not a directory");
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let queue = Mutex::new(WalkQueue {
        tasks: vec![Task::Dir(dir.to_string())],
        busy: 0,
        failed: false,
    });
    let wake = Condvar::new();
    let found: Mutex<Found> = Mutex::new(Vec::new());
    let errors: Mutex<Vec<(String, anyhow::Error)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut buf = Vec::new();
                    let mut local: Found = Vec::new();
                    loop {
                        let (task, failed) = {
                            let mut q = lock(&queue);
                            loop {
                                if let Some(task) = q.tasks.pop() {
                                    q.busy += 1;
                                    break (Some(task), q.failed);
                                }
                                if q.busy == 0 {
                                    break (None, q.failed);
                                }
                                q = wake.wait(q).unwrap_or_else(|e| e.into_inner());
                            }
                        };
                        let Some(task) = task else {
                            wake.notify_all();
                            break;
                        };
                        let mut new_tasks = Vec::new();
                        match task {
                            Task::Dir(rel_dir) => {
                                let publish = |tasks: &mut Vec<Task>| {
                                    lock(&queue).tasks.append(tasks);
                                    wake.notify_all();
                                };
                                match list_dir(root, &rel_dir, skip, &mut new_tasks, &publish) {
                                    Ok(()) => {}
                                    Err(e) => {
                                        lock(&queue).failed = true;
                                        lock(&errors).push((rel_dir, e));
                                    }
                                }
                            }
                            Task::File(rel, parent) => {
                                let hashed = (!failed && want(&rel)).then(|| {
                                    if buf.is_empty() {
                                        buf = vec![0u8; HASH_BUF];
                                    }
                                    let name = rel.rsplit('/').next().unwrap_or(&rel);
                                    match &parent {
                                        Some(dir) => open_in(dir, name),
                                        None => File::open(root.join(&rel)),
                                    }
                                    .and_then(|file| hash_open_file(file, &mut buf, &mut |_| {}))
                                });
                                local.push((rel, hashed));
                            }
                        }
                        let mut q = lock(&queue);
                        q.busy -= 1;
                        let wake_all = !new_tasks.is_empty() || (q.busy == 0 && q.tasks.is_empty());
                        q.tasks.append(&mut new_tasks);
                        drop(q);
                        if wake_all {
                            wake.notify_all();
                        }
                    }
                    lock(&found).append(&mut local);
                })
            })
            .collect();
        // Joined, not left to the scope: see `hash_all`.
        for w in workers {
            if let Err(panic) = w.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
    let mut errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
    errors.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if let Some((_, e)) = errors.into_iter().next() {
        return Err(e);
    }
    let mut found = found.into_inner().unwrap_or_else(|e| e.into_inner());
    found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// Locks a mutex, ignoring poisoning (a panicking worker is re-raised by the scope).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lists one directory of a walk: subdirectories and regular files become
/// tasks; the own bundle is skipped.
///
/// Tasks go to `publish` every [`PUBLISH_EVERY`] entries, so in a large flat
/// directory the other workers start hashing while it is still being listed.
fn list_dir(
    root: &Path,
    rel_dir: &str,
    skip: &OwnBundle,
    tasks: &mut Vec<Task>,
    publish: &dyn Fn(&mut Vec<Task>),
) -> Result<()> {
    let path = root.join(rel_dir);
    let entries =
        std::fs::read_dir(&path).with_context(|| format!("cannot read directory {rel_dir}"))?;
    // Without a handle on the directory, files are opened by their path.
    let parent = cfg!(unix)
        .then(|| File::open(&path).ok().map(Arc::new))
        .flatten();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read directory {rel_dir}"))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            bail!(
                "{rel_dir}/{}: file name is not valid UTF-8; rename it",
                name.to_string_lossy()
            );
        };
        let rel = format!("{rel_dir}/{name}");
        let ft = entry
            .file_type()
            .with_context(|| format!("cannot stat {rel}"))?;
        if ft.is_dir() {
            tasks.push(Task::Dir(rel));
        } else if ft.is_file() && !skip.skips(&rel) {
            tasks.push(Task::File(rel, parent.clone()));
        }
        if tasks.len() >= PUBLISH_EVERY {
            publish(tasks);
        }
    }
    Ok(())
}

/// How many tasks a directory listing gathers before it shares them.
const PUBLISH_EVERY: usize = 64;

/// A file's sha256 and size, or why it could not be hashed.
type Hashed = std::io::Result<([u8; 32], u64)>;

/// Whether `hex` (lowercase, as bundles hold it) spells `digest`.
fn hex_eq(digest: &[u8; 32], hex: &str) -> bool {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    hex.len() == 64
        && digest.iter().zip(hex.as_bytes().chunks(2)).all(|(b, h)| {
            h[0] == DIGITS[usize::from(b >> 4)] && h[1] == DIGITS[usize::from(b & 15)]
        })
}

/// The read buffer of each hashing worker. Measured on a 2-core EPYC: with
/// 64 KiB the data the kernel copies in is still in cache when SHA-256 reads
/// it; 128 KiB and more triple the kernel's time (sys 0.05 s against 0.22 s
/// for a 256 MiB file) and lose a third of the throughput.
const HASH_BUF: usize = 64 * 1024;

/// Hashes `paths` (relative to `root`) on every core; results in input order.
fn hash_all(root: &Path, paths: &[&str]) -> Vec<Hashed> {
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
fn open_in(dir: &File, name: &str) -> std::io::Result<File> {
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
fn open_in(_dir: &File, _name: &str) -> std::io::Result<File> {
    unreachable!("directories are held open on Unix only")
}

/// Hashes an open file (see [`hash_file`]).
fn hash_open_file(mut file: File, buf: &mut [u8], after_chunk: &mut dyn FnMut(u64)) -> Hashed {
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

/// Rejects absolute paths, `..`, `.`, empty components and NUL bytes.
fn check_rel_path(path: &str) -> std::result::Result<(), String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    if path.starts_with('/') || path.starts_with('\\') || path.get(1..2) == Some(":") {
        return Err("absolute path".into());
    }
    if path.contains('\0') {
        return Err("NUL byte in path".into());
    }
    for part in path.split(['/', '\\']) {
        match part {
            ".." => return Err("`..` component escapes the project root".into()),
            "." | "" => return Err("path is not in normal form".into()),
            _ => {}
        }
    }
    Ok(())
}

/// Rejects a path with a symbolic link in any component: a link could point
/// anywhere, and pack never lists one.
fn check_no_escape(root: &Path, path: &str) -> std::result::Result<(), String> {
    let mut p = root.to_path_buf();
    for part in path.split('/') {
        p.push(part);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::canonicalize(&p);
                let root = std::fs::canonicalize(root);
                let escapes = match (target, root) {
                    (Ok(t), Ok(r)) => !t.starts_with(r),
                    _ => true,
                };
                return Err(if escapes {
                    "symbolic link escapes the project root".into()
                } else {
                    "symbolic link (evidence lists regular files only)".into()
                });
            }
            Ok(_) => {}
            Err(_) => return Ok(()), // missing: reported as missing by the read
        }
    }
    Ok(())
}

/// The seed kit's scheme: sha256(key + json.dumps(manifest, indent=2)),
/// compared in constant time.
fn seed_signature_ok(m: &Manifest, signature: &str, key: &Key) -> bool {
    let want = seed_signature(m, key);
    constant_time_eq(want.as_bytes(), signature.as_bytes())
}

fn seed_signature(m: &Manifest, key: &Key) -> String {
    let artifacts: Vec<serde_json::Value> = m
        .artifacts
        .iter()
        .map(|a| {
            let mut o = serde_json::Map::new();
            o.insert("path".into(), a.path.clone().into());
            o.insert("sha256".into(), a.sha256.clone().into());
            if let Some(size) = a.size {
                o.insert("size".into(), size.into());
            }
            serde_json::Value::Object(o)
        })
        .collect();
    // The seed writes its keys in this order; preserve_order keeps it.
    let mut o = serde_json::Map::new();
    o.insert("version".into(), m.version.clone().into());
    o.insert("ts".into(), m.ts.into());
    if let Some(dir) = &m.dir {
        o.insert("dir".into(), dir.clone().into());
    }
    o.insert("artifacts".into(), artifacts.into());
    o.insert(
        "signing".into(),
        json!({"algo": m.signing.algo, "keyRef": m.signing.key_ref}),
    );
    let mut hasher = Sha256::new();
    hasher.update(&key.bytes);
    hasher.update(python_dumps_indent2(&serde_json::Value::Object(o)).as_bytes());
    util::hex(&hasher.finalize())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Python's `json.dumps(value, indent=2)`: `", "`-free item separators at line
/// ends, `": "` after keys, and non-ASCII escaped as `\uXXXX`.
pub fn python_dumps_indent2(value: &serde_json::Value) -> String {
    fn go(v: &serde_json::Value, depth: usize, out: &mut String) {
        use serde_json::Value::*;
        let pad = |d: usize, out: &mut std::string::String| {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', 2 * d));
        };
        match v {
            Null => out.push_str("null"),
            Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Number(n) => out.push_str(&n.to_string()),
            String(s) => py_str(s, out),
            Array(a) if a.is_empty() => out.push_str("[]"),
            Object(o) if o.is_empty() => out.push_str("{}"),
            Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(depth + 1, out);
                    go(x, depth + 1, out);
                }
                pad(depth, out);
                out.push(']');
            }
            Object(o) => {
                out.push('{');
                for (i, (k, x)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(depth + 1, out);
                    py_str(k, out);
                    out.push_str(": ");
                    go(x, depth + 1, out);
                }
                pad(depth, out);
                out.push('}');
            }
        }
    }
    fn py_str(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    let mut out = String::new();
    go(value, 0, &mut out);
    out
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let val = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(val(p[0])? << 4 | val(*p.get(1)?)?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(o) => {
                let mut keys: Vec<_> = o.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&o[k]));
                }
                serde_json::Value::Object(out)
            }
            serde_json::Value::Array(a) => a.iter().map(sorted).collect(),
            v => v.clone(),
        }
    }

    #[test]
    fn canonical_form_is_sorted_compact_json() {
        let m = Manifest {
            artifacts: vec![Artifact {
                path: "out/é \"q\".txt".into(),
                sha256: "0".repeat(64),
                size: Some(3),
            }],
            dir: Some("out".into()),
            signing: Signing {
                algo: ALGO_HMAC.into(),
                key_ref: "env:MC_SIGNING_KEY".into(),
            },
            ts: 7,
            version: "v1".into(),
        };
        let value = serde_json::to_value(&m).unwrap();
        let want = serde_json::to_vec(&sorted(&value)).unwrap();
        assert_eq!(
            String::from_utf8(m.canonical()).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }

    #[test]
    fn python_dumps_matches_python() {
        // Printed by Python 3.11: json.dumps({"a": [1, {"b": "é\n"}], "c": [], "d": {}}, indent=2)
        let v: serde_json::Value =
            serde_json::from_str(r#"{"a": [1, {"b": "é\n"}], "c": [], "d": {}}"#).unwrap();
        let want = "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"\\u00e9\\n\"\n    }\n  ],\n  \"c\": [],\n  \"d\": {}\n}";
        assert_eq!(python_dumps_indent2(&v), want);
    }

    #[test]
    fn relative_paths_are_checked() {
        for bad in [
            "/etc/passwd",
            "out/../../x",
            "out//x",
            "./out/x",
            "",
            "C:/x",
            "out/\0",
        ] {
            assert!(check_rel_path(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(check_rel_path("out/a b/é.txt").is_ok());
    }

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
    fn walk_hashes_regular_files_in_path_order_and_skips_links() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for (path, text) in [("out/b/x", "x"), ("out/a", "a"), ("out/c/d/e", "e")] {
            std::fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
            std::fs::write(root.join(path), text).unwrap();
        }
        std::os::unix::fs::symlink(root.join("out/a"), root.join("out/l")).unwrap();
        std::os::unix::fs::symlink(root.join("out/c"), root.join("out/ld")).unwrap();
        let skip = OwnBundle {
            rel: None,
            tmp_prefix: None,
        };
        let found = walk(root, "out", &skip, &|p| p != "out/b/x").unwrap();
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["out/a", "out/b/x", "out/c/d/e"]);
        let (digest, size) = found[2].1.as_ref().unwrap().as_ref().unwrap();
        assert_eq!(
            (util::hex(digest), *size),
            (util::hex(&Sha256::digest(b"e")), 1)
        );
        assert!(found[1].1.is_none(), "not wanted, not hashed");
    }

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
    fn unhex_round_trips() {
        assert_eq!(unhex("00abff"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(unhex("0g"), None);
    }
}
