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
//!
//! # Where each part lives
//!
//! `key.rs` the signing key; `bundle.rs` the format, its parsing and the
//! canonical form that is signed; `walk.rs` and `hash.rs` the parallel
//! listing and hashing of files; `paths.rs` the confinement of every path to
//! the project root; `seed.rs` the seed kit's bundles; `pack.rs` and
//! `verify.rs` the two commands.

mod bundle;
mod hash;
mod key;
mod pack;
mod paths;
mod pretty;
mod seed;
mod verify;
mod walk;

pub use bundle::{
    parse_bundle, read_bundle, read_limited_bundle, sign, Artifact, Bundle, Manifest, Signing,
    ALGO_HMAC, ALGO_SEED, MAX_BUNDLE,
};
#[cfg(all(unix, feature = "bench"))]
pub(crate) use hash::open_in;
pub use hash::{hash_file, hash_file_observed};
pub use key::{Key, DEV_KEY, MAX_KEY_FILE};
pub use pack::{collect, pack, run_pack, PackOptions};
pub use seed::{python_dumps_indent2, sign_seed};
pub use verify::{check_files, run_verify, verify, FileCheck, Rejected, Verdict};
