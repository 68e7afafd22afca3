//! Flagger: one `MetricTemplate` (`flagger.app/v1beta1`) per metric that has a
//! query, and a `Canary` whose `spec.analysis` holds the metrics with their
//! `thresholdRange` and the `stepWeights` of the configured canary stages.
//!
//! Flagger routes the canary through its step weights and applies one set of
//! thresholds at every step, so one stage's bounds travel: `--stage`, by
//! default the last canary stage (`canary_<percent>`), and the output says
//! which. A stage's pass bound becomes the range (`max` for `<=`, `min` for
//! `>=`; Flagger passes a value equal to a bound, as the local gate does).
//! Flagger has no warning band and counts a query without data as a failed
//! check, so there a value in the warning band fails and an optional objective
//! without data fails: stricter than the local gate, said in the output.
//! A query's `$window` becomes Flagger's `{{ interval }}`, the metric's interval.

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use super::{yaml, Planned, Rendered, Source};
use crate::gates::{Bound, Stage};

/// The traffic weight of a canary stage (`canary_20` → 20), 1 to 99.
pub fn canary_weight(stage: &str) -> Option<u32> {
    let digits = stage.strip_prefix("canary_")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 2 {
        return None;
    }
    digits.parse().ok().filter(|w| (1..=99).contains(w))
}

/// The `thresholdRange` of an objective: its pass bound.
pub fn threshold_range(bound: Bound) -> Value {
    match bound {
        Bound::Max(x) => json!({ "max": x }),
        Bound::Min(x) => json!({ "min": x }),
        Bound::Equals(_) => unreachable!("policy checks are left out"),
    }
}

/// The step weights of the canary stages, in rollout order, and the last
/// canary stage.
fn step_weights<'a>(src: &Source<'a>) -> Result<(Vec<u32>, &'a Stage)> {
    let canaries: Vec<(&Stage, u32)> = src
        .config
        .stages
        .iter()
        .filter_map(|s| canary_weight(&s.name).map(|w| (s, w)))
        .collect();
    let Some((last, _)) = canaries.last() else {
        bail!(
            "no canary stage (canary_<percent>, like canary_20) to take Flagger's stepWeights from: \
             add one to `stages` in golive.toml"
        );
    };
    let weights: Vec<u32> = canaries.iter().map(|(_, w)| *w).collect();
    if weights.windows(2).any(|w| w[0] >= w[1]) {
        bail!("the canary stages' weights {weights:?} do not grow: Flagger's stepWeights must");
    }
    Ok((weights, last))
}

/// The export with the bounds of `stage`, by default the last canary stage.
pub fn render(src: &Source<'_>, stage: Option<&str>) -> Result<Rendered> {
    let (weights, last) = step_weights(src)?;
    let chosen = match stage {
        Some(name) => src.config.stage(name)?,
        None => last,
    };
    let (planned, left) = super::plan(src, chosen)?;
    for p in &planned {
        super::check_name(&template_name(src, p), 63)
            .map_err(|e| anyhow!("metric {:?}: {e}", p.metric))?;
    }
    let mut left_out = super::merge_left_out(left);
    left_out.push(super::regression_left_out(src, &[chosen]));

    let warnings = super::unit_warnings(&planned);
    let mut text = String::new();
    for line in super::header(src, "flagger", &left_out, &warnings) {
        yaml::comment(&mut text, &line);
    }
    for p in &planned {
        let comments = [format!("Metric {}", super::describe(p))];
        yaml::document(&mut text, &comments, &metric_template(src, chosen, p));
    }
    let mut comments = vec![
        format!(
            "Thresholds of stage {} (--stage to choose another), at every step weight {weights:?}.",
            chosen.name
        ),
        "thresholdRange is the pass bound. Flagger has no warning band and counts a query".into(),
        "without data as a failed check: stricter than the local gate for warn and optional."
            .into(),
    ];
    comments.extend(planned.iter().map(super::describe));
    yaml::document(
        &mut text,
        &comments,
        &canary(src, chosen, &planned, &weights),
    );
    Ok(Rendered {
        text,
        left_out,
        notes: std::iter::once(format!(
            "flagger: thresholds of stage {}, step weights {weights:?}",
            chosen.name
        ))
        .chain(warnings)
        .collect(),
    })
}

fn template_name(src: &Source<'_>, p: &Planned<'_>) -> String {
    format!("{}-{}", src.settings.name, p.name)
}

fn metric_template(src: &Source<'_>, stage: &Stage, p: &Planned<'_>) -> Value {
    json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": super::metadata(src, &template_name(src, p), &stage.name),
        "spec": {
            "provider": { "type": "prometheus", "address": src.address },
            "query": super::with_window(p.query, "{{ interval }}"),
        },
    })
}

fn canary(src: &Source<'_>, stage: &Stage, planned: &[Planned<'_>], weights: &[u32]) -> Value {
    let s = src.settings;
    let metrics: Vec<Value> = planned
        .iter()
        .map(|p| {
            let mut template_ref = json!({ "name": template_name(src, p) });
            if let Some(ns) = &s.namespace {
                template_ref["namespace"] = json!(ns);
            }
            json!({
                "name": p.name,
                "templateRef": template_ref,
                "thresholdRange": threshold_range(p.objective.bound),
                "interval": s.interval,
            })
        })
        .collect();
    json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": super::metadata(src, &s.name, &stage.name),
        "spec": {
            "targetRef": {
                "apiVersion": s.target_kind.api_version(),
                "kind": s.target_kind.as_str(),
                "name": s.name,
            },
            "service": { "port": s.port },
            "analysis": {
                "interval": s.interval,
                "threshold": s.threshold,
                "stepWeights": weights,
                "metrics": metrics,
            },
        },
    })
}
