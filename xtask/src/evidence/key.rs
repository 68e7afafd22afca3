//! The signing key: from the environment or given directly, never printed.

use std::fmt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use hmac::{Hmac, KeyInit};
use sha2::Sha256;

use crate::util;

/// The seed kit's development key, used (with a warning) when no key is set.
pub const DEV_KEY: &str = "dev-key-not-for-prod";
/// The largest key file read from `MC_SIGNING_KEY_FILE`.
pub const MAX_KEY_FILE: u64 = 1 << 20;

/// A signing key. Its bytes are never printed: `Debug` shows only where it
/// came from.
pub struct Key {
    pub(super) bytes: Vec<u8>,
    pub(super) key_ref: String,
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
    ///
    /// A variable set to the empty string counts as unset: that is how GitHub
    /// Actions passes a secret that a forked pull request may not see, and such
    /// a run should get the development key (refused under `--strict`), not fail.
    pub fn from_env() -> Result<Key> {
        let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let inline = set("MC_SIGNING_KEY");
        let file = set("MC_SIGNING_KEY_FILE");
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
                if crate::attest::keys::is_pem(&bytes) {
                    bail!(
                        "MC_SIGNING_KEY_FILE holds a PEM key, which signs DSSE envelopes \
                         (`evidence pack --format dsse`); bundles are signed with an HMAC secret"
                    );
                }
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

    pub(super) fn hmac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.bytes).expect("HMAC takes keys of any size")
    }
}
