//! The adopters' snapshot API: `xtask::rehearse` gives the same reports on
//! every run and machine, so a snapshot of them changes only when the gates do.

use crate::common;

use xtask::rehearse::{self, Options, StageResult};

#[test]
fn the_default_rehearsal_is_deterministic_and_snapshotted() {
    let project = common::temp_project();
    let first = rehearse::rehearse(project.path(), &Options::default()).unwrap();
    let again = rehearse::rehearse(project.path(), &Options::default()).unwrap();
    assert_eq!(
        serde_json::to_string(&first).unwrap(),
        serde_json::to_string(&again).unwrap()
    );
    assert!(first.passed);
    assert!(
        !project.path().join("dist").exists()
            && !project
                .path()
                .join("out/gates-stage-v0.3.2-mc.json")
                .exists(),
        "a rehearsal writes nothing"
    );
    common::insta_settings().bind(|| insta::assert_yaml_snapshot!("rehearsal_default", first));
}

#[test]
fn a_degraded_release_fails_and_stops_the_rollout() {
    let project = common::temp_project();
    let opts = Options {
        degrade: vec!["GraphQL.reads.p95_ms=+200".into()],
        ..Options::default()
    };
    let r = rehearse::rehearse(project.path(), &opts).unwrap();
    let results: Vec<StageResult> = r.stages.iter().map(|s| s.result).collect();
    assert_eq!(
        results,
        [
            StageResult::Fail,
            StageResult::NotRun,
            StageResult::NotRun,
            StageResult::NotRun
        ]
    );
    assert!(!r.passed);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["stages"][1]["result"], "NOT RUN");
    assert!(json["stages"][1].get("report").is_none());
}

#[test]
fn an_objective_in_golive_toml_changes_the_report_of_its_stage_only() {
    let project = common::temp_project();
    let root = project.path();
    let before = rehearse::rehearse_stage(root, "canary_20", &Options::default()).unwrap();
    std::fs::write(
        root.join("golive.toml"),
        "[objectives.canary_20]\n\"GraphQL.reads.p95_ms\" = { max = 300, warn = 420 }\n",
    )
    .unwrap();
    let after = rehearse::rehearse_stage(root, "canary_20", &Options::default()).unwrap();
    let reads = |r: &xtask::gates::Report| {
        r.checks
            .iter()
            .find(|c| c.metric == "GraphQL.reads.p95_ms" && c.kind == xtask::gates::CheckKind::Slo)
            .unwrap()
            .clone()
    };
    assert_eq!(reads(&before).threshold, serde_json::json!(380.0));
    assert_eq!(reads(&after).threshold, serde_json::json!(300.0));
    assert_eq!(
        reads(&after).observed,
        reads(&before).observed,
        "same observations"
    );
    assert!(
        after.inputs.config.is_some(),
        "the report names the config file"
    );
    let stage = rehearse::rehearse_stage(root, "stage", &Options::default()).unwrap();
    assert_eq!(reads(&stage).threshold, serde_json::json!(400.0));
}

#[test]
fn an_unknown_stage_is_an_error() {
    let project = common::temp_project();
    let err = rehearse::rehearse_stage(project.path(), "prod", &Options::default()).unwrap_err();
    assert!(err.to_string().contains("unknown stage \"prod\""), "{err}");
}
