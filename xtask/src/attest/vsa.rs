//! The SLSA verification summary (`https://slsa.dev/verification_summary/v1`)
//! that `golive` signs when its key is Ed25519: one signed file that says
//! whether the release passed its gates, over the evidence files as subjects,
//! so a deploy step can admit a release by checking one envelope.
//!
//! How the go-live rehearsal maps onto the predicate:
//!
//! - `verifier.id`: the kit's go-live verifier ([`VERIFIER_ID`]), with the
//!   kit's version;
//! - `timeVerified`: the run's time (`SOURCE_DATE_EPOCH` when set);
//! - `resourceUri`: `pkg:generic/<project directory name>@<version>`;
//! - `policy`: the gates policy ([`POLICY_URI`]), with the name and sha256 of
//!   `golive.toml` when one configured the gates;
//! - `inputAttestations`: the signed evidence envelope of the run;
//! - `verificationResult`: `PASSED` when every stage passed and the evidence
//!   verified (golive's exit code 0), else `FAILED`;
//! - `verifiedLevels`: `MC_GOLIVE_<STAGE>` for the last stage of the rollout
//!   that passed (the stages are a track: each implies those before it), or
//!   `FAILED`, as the spec asks when verification failed;
//! - the extension field [`STAGES_FIELD`] lists every stage and its result.

use std::collections::BTreeMap;

use serde::Serialize;

use super::statement::{DigestSet, Subject};
use crate::gates::StageResult;

pub const VSA_PREDICATE: &str = "https://slsa.dev/verification_summary/v1";
pub const VERIFIER_ID: &str = "https://mc-kit.invalid/verifier/golive/v1";
pub const POLICY_URI: &str = "https://mc-kit.invalid/policy/golive-gates/v1";
/// The extension field with each stage's result (a URI, as SLSA asks of
/// extension fields).
pub const STAGES_FIELD: &str = "https://mc-kit.invalid/golive/stages/v1";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationSummary {
    pub verifier: Verifier,
    pub time_verified: String,
    pub resource_uri: String,
    pub policy: Resource,
    pub input_attestations: Vec<Resource>,
    pub verification_result: VerificationResult,
    pub verified_levels: Vec<String>,
    pub slsa_version: &'static str,
    #[serde(rename = "https://mc-kit.invalid/golive/stages/v1")]
    pub stages: Vec<StageOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verifier {
    pub id: &'static str,
    pub version: BTreeMap<&'static str, &'static str>,
}

/// A ResourceDescriptor with the fields used here.
#[derive(Debug, Clone, Serialize)]
pub struct Resource {
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<DigestSet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum VerificationResult {
    Passed,
    Failed,
}

/// One stage of the rollout and how it ended.
#[derive(Debug, Clone, Serialize)]
pub struct StageOutcome {
    pub stage: String,
    pub result: StageResult,
}

/// What a go-live run found, as the summary needs it.
#[derive(Debug, Clone)]
pub struct Run<'a> {
    pub project: &'a str,
    pub version: &'a str,
    pub time: String,
    pub passed: bool,
    pub stages: Vec<StageOutcome>,
    /// The gates configuration file and its sha256, when there was one.
    pub policy_file: Option<(String, String)>,
    /// The evidence envelope (path relative to the project root) and its sha256.
    pub evidence: (String, String),
    /// The evidence files.
    pub subjects: Vec<Subject>,
}

/// The subjects and predicate of `run`'s verification summary.
pub fn summary(run: Run<'_>) -> (Vec<Subject>, VerificationSummary) {
    let result = if run.passed {
        VerificationResult::Passed
    } else {
        VerificationResult::Failed
    };
    let level = run
        .stages
        .iter()
        .take_while(|s| {
            matches!(
                s.result,
                StageResult::Pass | StageResult::Warn | StageResult::NoData
            )
        })
        .last()
        .map(|s| format!("MC_GOLIVE_{}", level_name(&s.stage)));
    let verified_levels = match (result, level) {
        (VerificationResult::Passed, Some(level)) => vec![level],
        _ => vec!["FAILED".to_string()],
    };
    let (policy_name, policy_digest) = match run.policy_file {
        Some((name, sha256)) => (Some(name), Some(DigestSet { sha256 })),
        None => (None, None),
    };
    let (evidence_path, evidence_sha) = run.evidence;
    let vsa = VerificationSummary {
        verifier: Verifier {
            id: VERIFIER_ID,
            version: BTreeMap::from([("mc-kit", env!("CARGO_PKG_VERSION"))]),
        },
        time_verified: run.time,
        resource_uri: format!(
            "pkg:generic/{}@{}",
            purl_part(run.project),
            purl_part(run.version)
        ),
        policy: Resource {
            uri: POLICY_URI.to_string(),
            name: policy_name,
            digest: policy_digest,
        },
        input_attestations: vec![Resource {
            uri: evidence_path,
            name: None,
            digest: Some(DigestSet {
                sha256: evidence_sha,
            }),
        }],
        verification_result: result,
        verified_levels,
        slsa_version: "1.0",
        stages: run.stages,
    };
    (run.subjects, vsa)
}

/// A stage name as a level: uppercase letters, digits and `_`.
fn level_name(stage: &str) -> String {
    stage
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// A purl name or version: characters outside the unreserved set
/// percent-encoded, lowercase.
fn purl_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(char::from(b.to_ascii_lowercase()));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(results: &[(&str, StageResult)], passed: bool) -> Run<'static> {
        Run {
            project: "My Repo",
            version: "v1.0",
            time: "2023-11-14T22:13:20Z".into(),
            passed,
            stages: results
                .iter()
                .map(|(s, r)| StageOutcome {
                    stage: s.to_string(),
                    result: *r,
                })
                .collect(),
            policy_file: None,
            evidence: ("dist/evidence-v1.0.json".into(), "ab".repeat(32)),
            subjects: Vec::new(),
        }
    }

    #[test]
    fn levels_follow_the_last_stage_passed() {
        use StageResult::{Fail, NotRun, Pass, Warn};
        let all = [("stage", Pass), ("canary_20", Warn), ("production", Pass)];
        let (_, v) = summary(run(&all, true));
        assert_eq!(v.verified_levels, ["MC_GOLIVE_PRODUCTION"]);
        assert_eq!(v.verification_result, VerificationResult::Passed);
        assert_eq!(v.resource_uri, "pkg:generic/my%20repo@v1.0");
        let failed = [("stage", Pass), ("canary_20", Fail), ("production", NotRun)];
        let (_, v) = summary(run(&failed, false));
        assert_eq!(v.verified_levels, ["FAILED"]);
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["verificationResult"], "FAILED");
        assert_eq!(json[STAGES_FIELD][1]["result"], "FAIL");
    }
}
