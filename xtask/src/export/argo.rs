//! Argo Rollouts: one `AnalysisTemplate` (`argoproj.io/v1alpha1`) per stage,
//! one metric per objective that has a query.
//!
//! Argo evaluates a measurement's `failureCondition` first, then its
//! `successCondition`; when neither holds the measurement is *Inconclusive*,
//! and an inconclusive analysis pauses the rollout for a person to decide. The
//! local gate's three verdicts map onto that exactly:
//!
//! | local gate | Argo measurement | condition |
//! |---|---|---|
//! | PASS: within the pass bound | Successful | `successCondition: result[0] <= pass` |
//! | WARN: between pass and warn | Inconclusive | neither condition holds |
//! | FAIL: beyond the warn bound | Failed | `failureCondition: result[0] > warn` |
//!
//! Without a warn bound the failure condition is the pass bound's complement
//! (no inconclusive band). Argo hands a Prometheus vector to the conditions
//! as a list, empty when there is no data; a quantile over no traffic is `NaN`.
//! Either way a required objective fails (`len(result) == 0 ||
//! isNaN(result[0]) ||` in its failure condition, `isNaN` being one of Argo's
//! condition functions) and an optional one matches neither condition, so it
//! is inconclusive, as the local gate's `NO_DATA`. A query must therefore give
//! a vector: Argo passes a scalar as a bare number, which has no `result[0]`.
//! `failureLimit`, `inconclusiveLimit`, `interval` and `count` come from
//! `[export]`.

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::{yaml, Planned, Rendered, Source};
use crate::gates::{Bound, Objective, Stage};

/// The `successCondition` and `failureCondition` of an objective, in Argo's
/// expression language over a Prometheus vector `result`.
pub fn conditions(objective: &Objective) -> (String, String) {
    let (pass_op, fail_op, pass) = match objective.bound {
        Bound::Max(x) => ("<=", ">", x),
        Bound::Min(x) => (">=", "<", x),
        Bound::Equals(_) => unreachable!("policy checks are left out"),
    };
    let fail = objective.warn.unwrap_or(pass);
    let success = format!("len(result) > 0 && result[0] {pass_op} {pass}");
    let failure = if objective.required {
        format!("len(result) == 0 || isNaN(result[0]) || result[0] {fail_op} {fail}")
    } else {
        format!("len(result) > 0 && result[0] {fail_op} {fail}")
    };
    (success, failure)
}

/// The export of every stage, or of `stage` alone.
pub fn render(src: &Source<'_>, stage: Option<&str>) -> Result<Rendered> {
    let stages: Vec<&Stage> = match stage {
        Some(name) => vec![src.config.stage(name)?],
        None => src.config.stages.iter().collect(),
    };
    let mut names: Vec<(String, &str)> = Vec::new();
    let mut left = Vec::new();
    let mut docs = Vec::new();
    let mut warnings = Vec::new();
    for s in &stages {
        let name = format!("{}-{}", src.settings.name, super::k8s_name(&s.name));
        if let Some((_, other)) = names.iter().find(|(n, _)| *n == name) {
            bail!(
                "stages {other:?} and {:?} both become the AnalysisTemplate {name:?}: rename one in golive.toml",
                s.name
            );
        }
        super::check_name(&name, 63).map_err(|e| anyhow::anyhow!("stage {:?}: {e}", s.name))?;
        let (planned, l) = super::plan(src, s)?;
        left.extend(l);
        warnings.extend(super::unit_warnings(&planned));
        let mut comments = vec![format!(
            "Stage {}: pass bound -> successCondition, beyond the warn bound -> failureCondition, \
             between them Inconclusive.",
            s.name
        )];
        comments.extend(planned.iter().map(super::describe));
        docs.push((comments, template(src, s, &name, &planned)));
        names.push((name, &s.name));
    }
    let mut left_out = super::merge_left_out(left);
    left_out.push(super::regression_left_out(src, &stages));

    warnings.sort();
    warnings.dedup();
    let mut text = String::new();
    for line in super::header(src, "argo", &left_out, &warnings) {
        yaml::comment(&mut text, &line);
    }
    for (comments, doc) in &docs {
        yaml::document(&mut text, comments, doc);
    }
    Ok(Rendered {
        text,
        left_out,
        notes: warnings,
    })
}

fn template(src: &Source<'_>, stage: &Stage, name: &str, planned: &[Planned<'_>]) -> Value {
    let metrics: Vec<Value> = planned.iter().map(|p| metric(src, p)).collect();
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": super::metadata(src, name, &stage.name),
        "spec": { "metrics": metrics },
    })
}

fn metric(src: &Source<'_>, p: &Planned<'_>) -> Value {
    let s = src.settings;
    let (success, failure) = conditions(&p.objective);
    json!({
        "name": p.name,
        "interval": s.interval,
        "count": s.count,
        "successCondition": success,
        "failureCondition": failure,
        "failureLimit": s.failure_limit,
        "inconclusiveLimit": s.inconclusive_limit,
        "provider": {
            "prometheus": {
                "address": src.address,
                "query": super::with_window(p.query, &s.interval),
            },
        },
    })
}
