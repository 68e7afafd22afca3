//! The parts of the engines' CRD schemas (`openAPIV3Schema`) that the export
//! relies on, written out by hand from the CRDs of argoproj/argo-rollouts
//! (`manifests/crds/analysis-template-crd.yaml`) and fluxcd/flagger
//! (`artifacts/flagger/crd.yaml`): the required fields, their types, the
//! enums and patterns. The check also refuses a field the schema does not
//! list: the API server would prune it, so the engine would never see it.
#![allow(dead_code)]

use serde_json::Value;

/// A schema node.
pub enum S {
    Str,
    /// A string matching a check (a pattern of the CRD).
    StrWhere(&'static str, fn(&str) -> bool),
    /// A string, one of these.
    Enum(&'static [&'static str]),
    /// `type: integer`.
    Int,
    /// `type: number`.
    Num,
    /// `x-kubernetes-int-or-string`.
    IntOrStr,
    /// An object with these properties (name, required, schema). With `open`,
    /// other properties are allowed (`type: object` without properties).
    Obj {
        props: Vec<(&'static str, bool, S)>,
        open: bool,
    },
    Arr(Box<S>),
    /// Any of these required-field sets must all be present (`oneOf: required`).
    OneOfRequired(Vec<Vec<&'static str>>, Box<S>),
}

fn obj(props: Vec<(&'static str, bool, S)>) -> S {
    S::Obj { props, open: false }
}

fn open() -> S {
    S::Obj {
        props: vec![],
        open: true,
    }
}

/// `metadata` as the kit writes it (Kubernetes' ObjectMeta: the CRDs say only
/// `type: object`).
fn metadata() -> S {
    obj(vec![
        ("name", true, S::StrWhere("an RFC 1123 label", is_dns_label)),
        (
            "namespace",
            false,
            S::StrWhere("an RFC 1123 label", is_dns_label),
        ),
        ("labels", false, open()),
        ("annotations", false, open()),
    ])
}

pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Flagger's `pattern: "^[0-9]+(m|s)"`.
fn flagger_duration(s: &str) -> bool {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && matches!(s.as_bytes().get(digits), Some(b'm' | b's'))
}

/// argoproj.io/v1alpha1 AnalysisTemplate: required `spec`, `spec.metrics`,
/// and `name` and `provider` of each metric.
pub fn analysis_template() -> S {
    let prometheus = obj(vec![("address", false, S::Str), ("query", false, S::Str)]);
    let metric = obj(vec![
        ("name", true, S::Str),
        (
            "provider",
            true,
            obj(vec![("prometheus", false, prometheus)]),
        ),
        ("successCondition", false, S::Str),
        ("failureCondition", false, S::Str),
        ("interval", false, S::Str),
        ("initialDelay", false, S::Str),
        ("count", false, S::IntOrStr),
        ("failureLimit", false, S::IntOrStr),
        ("inconclusiveLimit", false, S::IntOrStr),
        ("consecutiveErrorLimit", false, S::IntOrStr),
    ]);
    obj(vec![
        ("apiVersion", true, S::Enum(&["argoproj.io/v1alpha1"])),
        ("kind", true, S::Enum(&["AnalysisTemplate"])),
        ("metadata", true, metadata()),
        (
            "spec",
            true,
            obj(vec![("metrics", true, S::Arr(Box::new(metric)))]),
        ),
    ])
}

/// flagger.app/v1beta1 MetricTemplate: required `spec.provider` (with
/// `type`) and `spec.query`.
pub fn metric_template() -> S {
    let provider = obj(vec![
        (
            "type",
            true,
            S::Enum(&[
                "prometheus",
                "influxdb",
                "datadog",
                "externalmetrics",
                "stackdriver",
                "cloudwatch",
                "newrelic",
                "graphite",
                "dynatrace",
                "keptn",
                "splunk",
            ]),
        ),
        ("address", false, S::Str),
    ]);
    obj(vec![
        ("apiVersion", true, S::Enum(&["flagger.app/v1beta1"])),
        ("kind", true, S::Enum(&["MetricTemplate"])),
        ("metadata", true, metadata()),
        (
            "spec",
            true,
            obj(vec![("provider", true, provider), ("query", true, S::Str)]),
        ),
    ])
}

/// flagger.app/v1beta1 Canary: required `spec.targetRef` (apiVersion, kind,
/// name) and `spec.analysis` (interval, threshold, and one of iterations,
/// stepWeight, stepWeights); each metric requires `name`.
pub fn canary() -> S {
    let target_ref = obj(vec![
        ("apiVersion", true, S::Str),
        (
            "kind",
            true,
            S::Enum(&["DaemonSet", "Deployment", "Service"]),
        ),
        ("name", true, S::Str),
    ]);
    let metric = obj(vec![
        ("name", true, S::Str),
        (
            "interval",
            false,
            S::StrWhere("^[0-9]+(m|s)", flagger_duration),
        ),
        ("threshold", false, S::Num),
        (
            "thresholdRange",
            false,
            obj(vec![("min", false, S::Num), ("max", false, S::Num)]),
        ),
        ("query", false, S::Str),
        (
            "templateRef",
            false,
            obj(vec![("name", true, S::Str), ("namespace", false, S::Str)]),
        ),
    ]);
    let analysis = obj(vec![
        (
            "interval",
            false,
            S::StrWhere("^[0-9]+(m|s)", flagger_duration),
        ),
        ("iterations", false, S::Num),
        ("threshold", false, S::Num),
        ("maxWeight", false, S::Num),
        ("stepWeight", false, S::Num),
        ("stepWeights", false, S::Arr(Box::new(S::Num))),
        ("metrics", false, S::Arr(Box::new(metric))),
    ]);
    let analysis = S::OneOfRequired(
        vec![
            vec!["interval", "threshold", "iterations"],
            vec!["interval", "threshold", "stepWeight"],
            vec!["interval", "threshold", "stepWeights"],
        ],
        Box::new(analysis),
    );
    obj(vec![
        ("apiVersion", true, S::Enum(&["flagger.app/v1beta1"])),
        ("kind", true, S::Enum(&["Canary"])),
        ("metadata", true, metadata()),
        (
            "spec",
            true,
            obj(vec![
                ("targetRef", true, target_ref),
                ("analysis", true, analysis),
                ("service", false, obj(vec![("port", true, S::Num)])),
            ]),
        ),
    ])
}

/// Checks `v` against `s`; the error names the path.
pub fn check(v: &Value, s: &S, path: &str) -> Result<(), String> {
    let bad = |what: &str| Err(format!("{path}: {what}, got {v}"));
    match s {
        S::Str => v.is_string().then_some(()).map_or(bad("not a string"), Ok),
        S::StrWhere(what, f) => match v.as_str() {
            Some(x) if f(x) => Ok(()),
            _ => bad(&format!("not a string matching {what}")),
        },
        S::Enum(options) => match v.as_str() {
            Some(x) if options.contains(&x) => Ok(()),
            _ => bad(&format!("not one of {options:?}")),
        },
        S::Int => v.is_i64().then_some(()).map_or(bad("not an integer"), Ok),
        S::Num => v.is_number().then_some(()).map_or(bad("not a number"), Ok),
        S::IntOrStr => (v.is_i64() || v.is_string())
            .then_some(())
            .map_or(bad("not an integer or string"), Ok),
        S::Arr(item) => {
            let Some(items) = v.as_array() else {
                return bad("not an array");
            };
            for (i, x) in items.iter().enumerate() {
                check(x, item, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        S::OneOfRequired(sets, inner) => {
            let Some(map) = v.as_object() else {
                return bad("not an object");
            };
            let matching = sets
                .iter()
                .filter(|set| set.iter().all(|k| map.contains_key(*k)))
                .count();
            if matching != 1 {
                return bad(&format!("needs exactly one of the field sets {sets:?}"));
            }
            check(v, inner, path)
        }
        S::Obj { props, open } => {
            let Some(map) = v.as_object() else {
                return bad("not an object");
            };
            for (name, required, schema) in props {
                match map.get(*name) {
                    Some(x) => check(x, schema, &format!("{path}.{name}"))?,
                    None if *required => return Err(format!("{path}: required `{name}` missing")),
                    None => {}
                }
            }
            if !open {
                if let Some(k) = map.keys().find(|k| !props.iter().any(|(n, ..)| n == k)) {
                    return Err(format!("{path}: `{k}` is not in the schema"));
                }
            }
            Ok(())
        }
    }
}

/// Checks an exported document against the schema of its kind.
pub fn check_document(doc: &Value) -> Result<(), String> {
    let schema = match doc["kind"].as_str() {
        Some("AnalysisTemplate") => analysis_template(),
        Some("MetricTemplate") => metric_template(),
        Some("Canary") => canary(),
        other => return Err(format!("unexpected kind {other:?}")),
    };
    check(doc, &schema, "$")
}
