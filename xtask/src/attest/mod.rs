//! Evidence the supply-chain world can read: in-toto attestations (Statement
//! v1) in DSSE envelopes, signed with Ed25519.
//!
//! The seed-compatible bundle (`evidence pack`) is signed with HMAC, so whoever
//! checks it holds the secret that can forge it, and no other tool reads it.
//! This module adds, beside it:
//!
//! - [`keys`]: `evidence keygen` (an Ed25519 pair as PKCS#8 / SPKI PEM) and the
//!   securesystemslib key id;
//! - [`dsse`]: the envelope and its pre-authentication encoding;
//! - [`statement`]: the in-toto Statement whose subjects are the packed files
//!   and whose predicate (`EVIDENCE_PREDICATE`) says what was packed, when,
//!   from where and from which build;
//! - [`vsa`]: the SLSA verification summary `golive` signs for a release.
//!
//! `evidence pack --format dsse` collects and hashes files exactly as the
//! bundle does, and `evidence verify` checks an envelope's subjects with the
//! bundle's own file checks (missing, changed, extra, unsafe paths, links),
//! after the signature: it is one verifier with two ways in, so the two
//! formats cannot drift apart in what they accept.

pub mod dsse;
mod json;
pub mod keys;
pub mod statement;
pub mod vsa;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

use crate::evidence::{self, Artifact, PackOptions, Verdict};
use crate::flags::{KeygenArgs, PackArgs, VerifyArgs};
use crate::report::Facts;
use crate::util::{self, exit};
use dsse::Envelope;
use keys::{Ed25519Key, EvidenceKey, PublicKey};
use statement::{EvidencePredicate, Statement, Subject, EVIDENCE_PREDICATE, PAYLOAD_TYPE};

/// The `algo` of a verdict on an envelope.
pub const ALGO_ED25519: &str = "ed25519";

/// What `pack` wrote.
#[derive(Debug, Clone)]
pub struct Packed {
    pub envelope: Envelope,
    pub subjects: Vec<Subject>,
}

/// Hashes every regular file under `opts.dir` (as the bundle's `pack` does),
/// makes the Statement, signs it and writes the envelope atomically to
/// `opts.out`.
pub fn pack(opts: &PackOptions, key: &Ed25519Key, build: Facts) -> Result<Packed> {
    let out = opts.root.join(&opts.out);
    let (dir, artifacts) = evidence::collect(&opts.root, &opts.dir, &out)?;
    let subjects: Vec<Subject> = artifacts
        .into_iter()
        .map(|a| Subject::new(a.path, a.sha256))
        .collect();
    let predicate = EvidencePredicate {
        version: opts.version.clone(),
        time: util::rfc3339(opts.ts),
        dir,
        build,
    };
    let st = Statement::new(subjects, EVIDENCE_PREDICATE, predicate);
    let envelope = dsse::sign(PAYLOAD_TYPE, &st.to_payload(), key);
    write_envelope(&out, &envelope)?;
    Ok(Packed {
        envelope,
        subjects: st.subject,
    })
}

/// Writes `env` as pretty JSON with a trailing newline, atomically.
pub fn write_envelope(path: &Path, env: &Envelope) -> Result<()> {
    let mut text = serde_json::to_string_pretty(env).expect("an envelope always serialises");
    text.push('\n');
    util::write_atomic(path, text.as_bytes())
}

/// Why an envelope could not be judged at all: not decodable, not a
/// Statement. `verify` reports it as one line, exit 2.
#[derive(Debug)]
pub struct Malformed(pub String);

/// Verifies `env` (found at `env_path`, relative to `root`) with `key`: the
/// signature first, then the Statement, then its subjects against the files,
/// with the bundle's checks.
pub fn verify(
    root: &Path,
    env: &Envelope,
    env_path: &Path,
    key: &PublicKey,
) -> std::result::Result<Verdict, Malformed> {
    let payload = match dsse::open(env, key) {
        Ok(payload) => payload,
        Err(dsse::Refused::Malformed(why)) => return Err(Malformed(why)),
        Err(dsse::Refused::NotSigned(why)) => return Ok(unsigned_verdict(why)),
    };
    if env.payload_type != PAYLOAD_TYPE {
        return Err(Malformed(format!(
            "payloadType is {:?}, not {PAYLOAD_TYPE:?}",
            env.payload_type
        )));
    }
    let st = statement::parse(&payload).map_err(|e| Malformed(format!("statement: {e:#}")))?;
    // A verification summary admits a release only if it says PASSED: a
    // well-signed FAILED is a verdict of not ok, never an "ok".
    let summary_failed = (st.predicate_type == vsa::VSA_PREDICATE
        && st.verification_result.as_deref() != Some("PASSED"))
    .then(|| {
        format!(
            "the verification summary's verificationResult is {}, not \"PASSED\"",
            st.verification_result
                .as_deref()
                .map_or("missing".to_string(), |r| format!("{r:?}"))
        )
    });
    let artifacts: Vec<Artifact> = st
        .subjects
        .into_iter()
        .map(|s| Artifact {
            path: s.name,
            sha256: s.digest.sha256,
            size: None,
        })
        .collect();
    let files = evidence::check_files(root, &st.dir, &artifacts, env_path);
    let mut reasons: Vec<String> = summary_failed.into_iter().collect();
    reasons.extend(files.reasons);
    Ok(Verdict {
        signature_ok: true,
        algo: ALGO_ED25519.to_string(),
        weak_signature: false,
        ok: reasons.is_empty(),
        missing: files.missing,
        mismatch: files.mismatch,
        extra: files.extra,
        rejected: files.rejected,
        reasons,
    })
}

/// The verdict on an envelope no signature of the key covers: its payload is
/// not read, so no file is checked.
fn unsigned_verdict(why: String) -> Verdict {
    Verdict {
        signature_ok: false,
        algo: ALGO_ED25519.to_string(),
        weak_signature: false,
        missing: Vec::new(),
        mismatch: Vec::new(),
        extra: Vec::new(),
        rejected: Vec::new(),
        reasons: vec![why],
        ok: false,
    }
}

/// Whether `bytes` hold a DSSE envelope rather than a bundle, from the
/// top-level keys: the first key that only one of the formats has decides
/// (`manifest`, `signature` for a bundle; `payload`, `payloadType`,
/// `signatures` for an envelope), so a large bundle is not read twice.
/// Anything else is left to the bundle parser and its messages.
pub fn is_envelope(bytes: &[u8]) -> bool {
    use std::cell::Cell;
    struct Probe<'a>(&'a Cell<Option<bool>>);
    impl<'de> serde::de::DeserializeSeed<'de> for Probe<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> serde::de::Visitor<'de> for Probe<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                match &*key {
                    "manifest" | "signature" => self.0.set(Some(false)),
                    "payload" | "payloadType" | "signatures" => self.0.set(Some(true)),
                    _ => {
                        map.next_value::<serde::de::IgnoredAny>()?;
                        continue;
                    }
                }
                // Decided: stop reading (the error this gives is not an answer).
                return Err(serde::de::Error::custom("decided"));
            }
            Ok(())
        }
    }
    let decided = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let _ = serde::de::DeserializeSeed::deserialize(Probe(&decided), &mut de);
    decided.get() == Some(true)
}

/// `evidence keygen`: writes the pair and prints the key id.
pub fn run_keygen(root: &Path, args: &KeygenArgs) -> Result<u8> {
    let out = root.join(&args.out);
    let keyid = keys::keygen(&out)?;
    util::println_stdout(&format!(
        "wrote Ed25519 private key → {} (mode 0600) and public key → {}",
        args.out.display(),
        keys::pub_path(&args.out).display()
    ))?;
    util::println_stdout(&format!("key id: {keyid}"))?;
    Ok(exit::OK)
}

/// `evidence pack --format dsse`.
pub fn run_pack(root: &Path, args: &PackArgs, prog: &str) -> Result<u8> {
    let key = match keys::signing_key_from_env(args.strict, prog)? {
        EvidenceKey::Ed25519(key) => key,
        EvidenceKey::Hmac(_) => {
            return Err(anyhow!(
                "--format dsse signs with an Ed25519 key: set MC_SIGNING_KEY_FILE to a private \
                 key made by `evidence keygen` (and unset MC_SIGNING_KEY)"
            ))
        }
    };
    let opts = PackOptions {
        root: root.to_path_buf(),
        dir: args.dir.clone(),
        out: args.out.clone(),
        version: util::version_from_env(),
        ts: util::now_epoch()?,
    };
    let packed = pack(&opts, &key, build_facts(root)?)?;
    util::println_stdout(&format!(
        "wrote DSSE envelope → {} ({} subjects, key id {})",
        args.out.display(),
        packed.subjects.len(),
        key.keyid()
    ))?;
    Ok(exit::OK)
}

/// The build facts `golive` records, for the predicate.
fn build_facts(root: &Path) -> Result<Facts> {
    let sh = xshell::Shell::new().context("cannot start a shell")?;
    sh.change_dir(root);
    Ok(crate::golive::build_facts(&sh, root))
}

/// `evidence verify` of an envelope (`bytes` read from `args.file`).
pub fn run_verify(root: &Path, args: &VerifyArgs, bytes: &[u8]) -> Result<u8> {
    let file = &args.file;
    let not_verified = |e| util::fail(exit::NOT_VERIFIED, e);
    let env = dsse::parse(bytes)
        .with_context(|| format!("malformed envelope {}", file.display()))
        .map_err(not_verified)?;
    let Some(key) = keys::verify_key(root, args.key.as_deref())? else {
        return Err(not_verified(anyhow!(
            "{} is a DSSE envelope: give its public key with --key FILE or {}",
            file.display(),
            keys::VERIFY_KEY_VAR
        )));
    };
    let verdict = verify(root, &env, file, &key).map_err(|Malformed(why)| {
        not_verified(anyhow!("malformed envelope {}: {why}", file.display()))
    })?;
    util::println_stdout(&serde_json::to_string_pretty(&verdict).expect("a verdict serialises"))?;
    if !verdict.ok {
        return Err(util::fail(
            exit::NOT_VERIFIED,
            anyhow!(
                "{} does not verify: {}",
                file.display(),
                verdict.reasons.join("; ")
            ),
        ));
    }
    Ok(exit::OK)
}

/// The verification summary `golive` writes beside its reports.
pub fn attestation_path(version: &str) -> PathBuf {
    PathBuf::from("dist").join(format!("golive-{version}.intoto.json"))
}

/// `golive`'s evidence step with an Ed25519 key: packs the envelope, then
/// verifies what was written with the key's public half, as a deploy step
/// would.
pub fn pack_and_verify(
    opts: &PackOptions,
    key: &Ed25519Key,
    build: Facts,
) -> Result<(Packed, Verdict)> {
    let packed = pack(opts, key, build)?;
    let written = evidence::read_limited_bundle(&opts.root, &opts.out)?;
    let env = dsse::parse(&written).context("the envelope just written does not parse")?;
    let verdict = verify(&opts.root, &env, &opts.out, &key.public())
        .map_err(|Malformed(why)| anyhow!("the envelope just written is malformed: {why}"))?;
    Ok((packed, verdict))
}

/// Signs `run`'s SLSA verification summary with `key` and writes it to
/// `root/path` atomically.
pub fn write_summary(root: &Path, path: &Path, key: &Ed25519Key, run: vsa::Run<'_>) -> Result<()> {
    let (subjects, predicate) = vsa::summary(run);
    let st = Statement::new(subjects, vsa::VSA_PREDICATE, predicate);
    write_envelope(
        &root.join(path),
        &dsse::sign(PAYLOAD_TYPE, &st.to_payload(), key),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_told_by_the_first_deciding_key() {
        assert!(is_envelope(br#"{"payloadType": "x", "payload": ""}"#));
        assert!(is_envelope(
            br#"{"x": [1, {"manifest": 2}], "signatures": []}"#
        ));
        assert!(!is_envelope(br#"{"manifest": {}, "signature": ""}"#));
        assert!(!is_envelope(br#"{"signature": "", "payload": ""}"#));
        assert!(!is_envelope(b"[1, 2]"));
        assert!(!is_envelope(b"not json"));
        assert!(!is_envelope(b"{}"));
    }
}
