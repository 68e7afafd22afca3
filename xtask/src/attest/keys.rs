//! Ed25519 keys: generating a pair, reading a private key (PKCS#8 PEM) and a
//! public key (SubjectPublicKeyInfo PEM), and the key id standard verifiers
//! expect.
//!
//! The key id is the one securesystemslib (1.x) computes: the lowercase hex
//! sha256 of the canonical JSON `{"keytype":"ed25519","keyval":{"public":
//! "<hex of the 32 key bytes>"},"scheme":"ed25519"}` (keys sorted, no
//! whitespace). Releases of securesystemslib before 0.26 also put
//! `"keyid_hash_algorithms": ["sha256", "sha512"]` in that dict and so
//! computed another id; the kit follows the current one.
//!
//! A private key is never printed: [`Ed25519Key`]'s `Debug` shows only the
//! key id and where the key came from, errors name the file and the problem,
//! never its content, and the key bytes are wiped on drop (`zeroize`).

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use ed25519_dalek::pkcs8::spki::der::pem::{self, LineEnding};
use ed25519_dalek::pkcs8::spki::EncodePublicKey;
use ed25519_dalek::pkcs8::{self, DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::evidence::{self, MAX_KEY_FILE};
use crate::util::{self, exit};

/// The variable naming the public key `evidence verify` checks envelopes with.
pub const VERIFY_KEY_VAR: &str = "MC_VERIFY_KEY_FILE";

/// An Ed25519 private key, with its key id and where it came from.
pub struct Ed25519Key {
    key: SigningKey,
    keyid: String,
    key_ref: String,
}

impl fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Key")
            .field("keyid", &self.keyid)
            .field("key_ref", &self.key_ref)
            .finish_non_exhaustive()
    }
}

impl Ed25519Key {
    /// Reads a PKCS#8 PEM private key (see [`parse_private_pem`]).
    pub fn from_pem(text: &[u8], key_ref: impl Into<String>) -> Result<Ed25519Key> {
        let key = parse_private_pem(text)?;
        Ok(Ed25519Key {
            keyid: keyid(&key.verifying_key()),
            key,
            key_ref: key_ref.into(),
        })
    }

    /// The securesystemslib key id of this key's public half.
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// Where the key came from (`env:MC_SIGNING_KEY_FILE`).
    pub fn key_ref(&self) -> &str {
        &self.key_ref
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey::new(self.key.verifying_key())
    }

    /// The Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }
}

/// An Ed25519 public key and its key id.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub key: VerifyingKey,
    pub keyid: String,
}

impl PublicKey {
    pub fn new(key: VerifyingKey) -> PublicKey {
        PublicKey {
            keyid: keyid(&key),
            key,
        }
    }

    /// Reads a SubjectPublicKeyInfo PEM public key.
    pub fn from_pem(text: &[u8]) -> Result<PublicKey> {
        parse_public_pem(text).map(PublicKey::new)
    }

    /// Reads the public key file at `path` (at most 1 MiB).
    pub fn from_file(path: &Path) -> Result<PublicKey> {
        let text = util::read_limited(path, MAX_KEY_FILE)
            .with_context(|| format!("cannot read the public key {}", path.display()))?;
        PublicKey::from_pem(&text).with_context(|| format!("public key {}", path.display()))
    }

    /// The key as SubjectPublicKeyInfo PEM.
    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .expect("an Ed25519 public key always encodes")
    }
}

/// The key id securesystemslib computes for an Ed25519 public key (see the
/// module documentation).
pub fn keyid(key: &VerifyingKey) -> String {
    // Written out in canonical form: keys sorted, no whitespace; the only
    // variable part is hex, which needs no escaping.
    let canonical = format!(
        r#"{{"keytype":"ed25519","keyval":{{"public":"{}"}},"scheme":"ed25519"}}"#,
        util::hex(key.as_bytes())
    );
    util::hex(&Sha256::digest(canonical.as_bytes()))
}

/// What kind of key a PEM file holds, from its label.
fn pem_label(text: &[u8]) -> Result<&str> {
    pem::decode_label(text)
        .map_err(|_| anyhow!("not a PEM key file (no valid `-----BEGIN ...-----` line)"))
}

/// Whether `text` looks like a PEM file (and so is not an HMAC secret).
pub fn is_pem(text: &[u8]) -> bool {
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    text[start..].starts_with(b"-----BEGIN ")
}

/// Parses an unencrypted PKCS#8 PEM Ed25519 private key. Every refusal says
/// what the file is instead; none repeats its content.
pub fn parse_private_pem(text: &[u8]) -> Result<SigningKey> {
    let text = std::str::from_utf8(text).map_err(|_| anyhow!("not a PEM key file (not text)"))?;
    match pem_label(text.as_bytes())? {
        "PRIVATE KEY" => {}
        "ENCRYPTED PRIVATE KEY" => bail!(
            "the private key is encrypted; the kit reads unencrypted PKCS#8 keys \
             (keep the file mode 0600 instead, or make one with `evidence keygen`)"
        ),
        "PUBLIC KEY" => {
            bail!("this is a public key; signing needs the private key (the file without `.pub`)")
        }
        other => bail!(
            "a {other:?} PEM is not an Ed25519 PKCS#8 private key; make one with `evidence keygen`"
        ),
    }
    SigningKey::from_pkcs8_pem(text).map_err(|e| match e {
        pkcs8::Error::PublicKey(pkcs8::spki::Error::OidUnknown { oid }) => {
            anyhow!("not an Ed25519 key (algorithm {oid}); make one with `evidence keygen`")
        }
        e => anyhow!("malformed PKCS#8 Ed25519 private key ({e})"),
    })
}

/// Parses a SubjectPublicKeyInfo PEM Ed25519 public key.
pub fn parse_public_pem(text: &[u8]) -> Result<VerifyingKey> {
    let text = std::str::from_utf8(text).map_err(|_| anyhow!("not a PEM key file (not text)"))?;
    match pem_label(text.as_bytes())? {
        "PUBLIC KEY" => {}
        "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
            bail!("this is a private key; verifying needs the public key (the `.pub` file)")
        }
        other => bail!("a {other:?} PEM is not an Ed25519 SubjectPublicKeyInfo public key"),
    }
    VerifyingKey::from_public_key_pem(text).map_err(|e| match e {
        pkcs8::spki::Error::OidUnknown { oid } => {
            anyhow!("not an Ed25519 public key (algorithm {oid})")
        }
        e => anyhow!("malformed Ed25519 public key ({e})"),
    })
}

/// The signing key of `pack` and `golive`: an HMAC secret (bundles) or an
/// Ed25519 private key (DSSE envelopes).
#[derive(Debug)]
pub enum EvidenceKey {
    Hmac(evidence::Key),
    Ed25519(Box<Ed25519Key>),
}

/// The signing key from the environment. `MC_SIGNING_KEY_FILE` naming a PEM
/// file selects Ed25519 (a key readable by other users is a warning, refused
/// under `strict`); anything else is the HMAC secret, as before, with the
/// development key's warning (refused under `strict`).
pub fn signing_key_from_env(strict: bool, prog: &str) -> Result<EvidenceKey> {
    // Empty counts as unset, as for the HMAC key.
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if set("MC_SIGNING_KEY").is_none() {
        if let Some(path) = set("MC_SIGNING_KEY_FILE") {
            let path = PathBuf::from(path);
            let text = util::read_limited(&path, MAX_KEY_FILE).with_context(|| {
                format!(
                    "cannot read the signing key file {} (MC_SIGNING_KEY_FILE)",
                    path.display()
                )
            })?;
            if is_pem(&text) {
                let key =
                    Ed25519Key::from_pem(&text, "env:MC_SIGNING_KEY_FILE").with_context(|| {
                        format!("signing key {} (MC_SIGNING_KEY_FILE)", path.display())
                    })?;
                check_private_mode(&path, strict, prog)?;
                return Ok(EvidenceKey::Ed25519(Box::new(key)));
            }
        }
    }
    let key = evidence::Key::from_env()?;
    key.check_dev(strict, prog)?;
    Ok(EvidenceKey::Hmac(key))
}

/// Warns when the private key file at `path` can be read or written by other
/// users than its owner; refuses it under `strict`.
#[cfg(unix)]
fn check_private_mode(path: &Path, strict: bool, prog: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        let what = format!(
            "the private key {} is accessible to other users (mode {:04o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o7777,
            path.display()
        );
        if strict {
            bail!("--strict refuses it: {what}");
        }
        eprintln!("{prog}: warning: {what}");
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_mode(_path: &Path, _strict: bool, _prog: &str) -> Result<()> {
    Ok(())
}

/// The public key `verify` checks envelopes with: `--key`, else
/// `$MC_VERIFY_KEY_FILE`. `None` when neither is given.
pub fn verify_key(root: &Path, arg: Option<&Path>) -> Result<Option<PublicKey>> {
    let path = match (arg, std::env::var_os(VERIFY_KEY_VAR)) {
        (Some(p), _) => root.join(p),
        (None, Some(p)) if !p.is_empty() => PathBuf::from(p),
        _ => return Ok(None),
    };
    PublicKey::from_file(&path)
        .map(Some)
        .map_err(|e| util::fail(exit::USAGE, e))
}

/// Writes a new Ed25519 key pair: the private key as PKCS#8 PEM at `out`
/// (mode 0600) and the public key as SubjectPublicKeyInfo PEM at `out.pub`.
/// Refuses to overwrite either; each file is written whole or not at all.
/// Returns the key id.
pub fn keygen(out: &Path) -> Result<String> {
    let pub_path = pub_path(out);
    for p in [out, pub_path.as_path()] {
        if std::fs::symlink_metadata(p).is_ok() {
            return Err(util::fail(
                exit::USAGE,
                anyhow!(
                    "{} exists; the kit never overwrites a key: choose another --out or remove it",
                    p.display()
                ),
            ));
        }
    }
    let mut seed = [0u8; 32];
    rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut seed)
        .map_err(|e| anyhow!("the operating system's random generator failed: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    // PKCS#8 v1 (RFC 8410), without the optional public key: the form OpenSSL
    // writes and the one OpenSSL and Python's cryptography read.
    let pair = ed25519_dalek::ed25519::KeypairBytes {
        secret_key: seed,
        public_key: None,
    };
    zeroize_bytes(&mut seed);
    let private = pair
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| anyhow!("cannot encode the private key: {e}"))?;
    drop(pair);
    let public = PublicKey::new(key.verifying_key());
    write_new(out, private.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&pub_path, public.to_pem().as_bytes(), 0o644) {
        // Both or neither: a private key without its public key is half a pair.
        let _ = std::fs::remove_file(out);
        return Err(e);
    }
    Ok(public.keyid)
}

/// `FILE.pub` for `FILE`.
pub fn pub_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

fn zeroize_bytes(bytes: &mut [u8]) {
    use zeroize::Zeroize;
    bytes.zeroize();
}

/// Writes `bytes` to a new file at `path` with `mode`: through a temporary
/// file in the same directory, linked into place only if nothing is there.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".keygen.").suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(mode));
    #[cfg(not(unix))]
    let _ = mode;
    let mut tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist_noclobber(path).map_err(|e| {
        let code = if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            exit::USAGE
        } else {
            exit::ERROR
        };
        util::fail(
            code,
            anyhow!("cannot write {}: {}", path.display(), e.error),
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032's first test vector: its public key, and the id
    /// securesystemslib 1.6 gives it (`SSlibKey.from_crypto(...).keyid`).
    #[test]
    fn keyid_is_securesystemslibs() {
        let public: [u8; 32] = [
            0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64,
            0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68,
            0xf7, 0x07, 0x51, 0x1a,
        ];
        let key = VerifyingKey::from_bytes(&public).unwrap();
        assert_eq!(keyid(&key), KEYID_RFC8032_1);
    }

    const KEYID_RFC8032_1: &str =
        "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916";

    #[test]
    fn wrong_pems_are_refused_by_kind() {
        let err = |t: &str| format!("{:#}", parse_private_pem(t.as_bytes()).unwrap_err());
        assert!(err("hello").contains("not a PEM"));
        assert!(err(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
        )
        .contains("encrypted"));
        assert!(
            err("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")
                .contains("not an Ed25519")
        );
        assert!(
            err("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .contains("public key")
        );
        assert!(
            err("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .contains("malformed")
        );
    }
}
