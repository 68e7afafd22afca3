//! in-toto Statement v1 (in-toto/attestation `spec/v1/statement.md`): the
//! payload of the kit's envelopes.
//!
//! ```json
//! {"_type": "https://in-toto.io/Statement/v1",
//!  "subject": [{"name": "out/sample.txt", "digest": {"sha256": "…"}}],
//!  "predicateType": "https://mc-kit.invalid/attestation/evidence/v1",
//!  "predicate": {"version": "v0.3.2-mc", "time": "2023-11-14T22:13:20Z", "dir": "out",
//!                "build": {"commit": …, "dirty": …, "rustc": …, "cargo_lock_sha256": …}}}
//! ```
//!
//! A subject's `name` is the file's path as the evidence bundle writes it
//! (relative to the project root, `/`-separated), so the subjects are checked
//! against the files exactly as a bundle's artifacts are.
//!
//! Reading follows the spec's parsing rules: unknown fields are ignored (a
//! subject's `uri` or another digest algorithm changes nothing), but what the
//! kit checks must be there and be exact: `_type`, each subject's `name` and
//! `digest.sha256` (64 lowercase hex digits), names listed once. The packed
//! directory is the predicate's `dir` when it has one (the kit's evidence
//! predicate always does), else the one directory every subject lies in (a
//! SLSA verification summary of `out/`).

use std::collections::BTreeSet;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::json::{object, objects, opt_object};
use crate::report::Facts;

/// The DSSE payload type of in-toto attestations.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The Statement's `_type`.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type of the kit's evidence attestation (see the README).
/// The `.invalid` name is reserved (RFC 2606): the URI can collide with no
/// one's, and does not pretend to resolve.
pub const EVIDENCE_PREDICATE: &str = "https://mc-kit.invalid/attestation/evidence/v1";

/// A Statement as the kit writes it.
#[derive(Debug, Clone, Serialize)]
pub struct Statement<P> {
    #[serde(rename = "_type")]
    pub type_: &'static str,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: &'static str,
    pub predicate: P,
}

impl<P: Serialize> Statement<P> {
    pub fn new(subject: Vec<Subject>, predicate_type: &'static str, predicate: P) -> Self {
        Statement {
            type_: STATEMENT_TYPE,
            subject,
            predicate_type,
            predicate,
        }
    }

    /// The payload bytes: compact JSON.
    pub fn to_payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a statement always serialises")
    }
}

/// One subject: a file and its sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subject {
    pub name: String,
    pub digest: DigestSet,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestSet {
    pub sha256: String,
}

impl Subject {
    pub fn new(name: impl Into<String>, sha256: impl Into<String>) -> Subject {
        Subject {
            name: name.into(),
            digest: DigestSet {
                sha256: sha256.into(),
            },
        }
    }
}

/// The predicate of the kit's evidence attestation.
#[derive(Debug, Clone, Serialize)]
pub struct EvidencePredicate {
    /// The release version (`MC_VERSION`).
    pub version: String,
    /// When it was packed, RFC 3339 UTC (`SOURCE_DATE_EPOCH` when set).
    pub time: String,
    /// The packed directory, relative to the project root.
    pub dir: String,
    /// Git commit and dirty flag, compiler, sha256 of `Cargo.lock`.
    pub build: Facts,
}

/// What `verify` needs from a Statement it has checked the signature of.
#[derive(Debug, Clone)]
pub struct Checked {
    pub subjects: Vec<Subject>,
    pub predicate_type: String,
    /// The directory the subjects were packed from.
    pub dir: String,
    /// `predicate.verificationResult`, when the predicate has one.
    pub verification_result: Option<String>,
}

#[derive(Deserialize)]
struct StatementIn {
    #[serde(rename = "_type")]
    type_: String,
    #[serde(deserialize_with = "objects")]
    subject: Vec<SubjectIn>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    #[serde(default, deserialize_with = "opt_object")]
    predicate: Option<PredicateIn>,
}

#[derive(Deserialize)]
struct SubjectIn {
    name: Option<String>,
    #[serde(default, deserialize_with = "opt_object")]
    digest: Option<DigestIn>,
}

#[derive(Deserialize)]
struct DigestIn {
    sha256: Option<String>,
}

#[derive(Deserialize)]
struct PredicateIn {
    dir: Option<String>,
    /// A SLSA verification summary's result.
    #[serde(rename = "verificationResult")]
    verification_result: Option<String>,
}

/// Parses and checks a Statement's bytes (see the module documentation).
pub fn parse(payload: &[u8]) -> Result<Checked> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let st: StatementIn = object(&mut de)?;
    de.end()?;
    if st.type_ != STATEMENT_TYPE {
        bail!("`_type` is {:?}, not {STATEMENT_TYPE:?}", st.type_);
    }
    let mut seen = BTreeSet::new();
    let mut subjects = Vec::with_capacity(st.subject.len());
    for (i, s) in st.subject.into_iter().enumerate() {
        let Some(name) = s.name else {
            bail!("subject {i} has no `name`: the kit checks subjects by file name");
        };
        let Some(sha256) = s.digest.and_then(|d| d.sha256) else {
            bail!("subject {name:?} has no `digest.sha256`");
        };
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            bail!("subject {name:?}: `digest.sha256` is not 64 lowercase hex digits");
        }
        if !seen.insert(name.clone()) {
            bail!("subject {name:?} is listed twice");
        }
        subjects.push(Subject::new(name, sha256));
    }
    let (dir, verification_result) = match st.predicate {
        Some(p) => (p.dir, p.verification_result),
        None => (None, None),
    };
    let dir = match dir {
        Some(dir) => dir,
        None => common_dir(&subjects)?,
    };
    Ok(Checked {
        subjects,
        predicate_type: st.predicate_type,
        dir,
        verification_result,
    })
}

/// The one top directory every subject lies in.
fn common_dir(subjects: &[Subject]) -> Result<String> {
    let top = |s: &Subject| s.name.split_once('/').map(|(d, _)| d.to_string());
    let mut dirs = subjects.iter().map(top);
    match dirs.next() {
        Some(Some(first)) if dirs.all(|d| d.as_deref() == Some(first.as_str())) => Ok(first),
        _ => bail!(
            "the predicate has no `dir` and the subjects do not lie in one directory: \
             the kit cannot tell which directory to check"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn statement(subjects: &str, predicate: &str) -> Vec<u8> {
        format!(
            r#"{{"_type":"{STATEMENT_TYPE}","subject":{subjects},"predicateType":"x:y","predicate":{predicate}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn dir_comes_from_the_predicate_or_the_subjects() {
        let one =
            format!(r#"[{{"name":"out/a","digest":{{"sha256":"{SHA}","sha512":"x"}},"uri":"u"}}]"#);
        assert_eq!(
            parse(&statement(&one, r#"{"dir":"other"}"#)).unwrap().dir,
            "other"
        );
        assert_eq!(parse(&statement(&one, "{}")).unwrap().dir, "out");
        let two = format!(
            r#"[{{"name":"out/a","digest":{{"sha256":"{SHA}"}}}},{{"name":"dist/b","digest":{{"sha256":"{SHA}"}}}}]"#
        );
        assert!(parse(&statement(&two, "{}")).is_err());
    }

    #[test]
    fn what_is_checked_must_be_exact() {
        let err = |s: &str, p: &str| format!("{:#}", parse(&statement(s, p)).unwrap_err());
        let dup = format!(
            r#"[{{"name":"out/a","digest":{{"sha256":"{SHA}"}}}},{{"name":"out/a","digest":{{"sha256":"{SHA}"}}}}]"#
        );
        assert!(err(&dup, "{}").contains("listed twice"));
        assert!(err(r#"[{"digest":{"sha256":"00"}}]"#, "{}").contains("no `name`"));
        assert!(
            err(r#"[{"name":"out/a","digest":{"sha256":"00"}}]"#, "{}").contains("64 lowercase")
        );
        assert!(err(r#"[{"name":"out/a","digest":{}}]"#, "{}").contains("digest.sha256"));
        assert!(err("{}", "{}").contains("invalid type: map, expected a sequence"));
        assert!(err("[]", "[1]").contains("object"));
        let wrong =
            br#"{"_type":"https://in-toto.io/Statement/v0.1","subject":[],"predicateType":"x"}"#;
        assert!(format!("{:#}", parse(wrong).unwrap_err()).contains("`_type`"));
    }
}
