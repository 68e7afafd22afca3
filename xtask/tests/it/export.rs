//! `gates export`: the manifests parse as YAML, satisfy the fields the
//! engines' CRDs require, carry exactly the thresholds the local gate judges
//! with (a round trip through Argo's conditions and Flagger's ranges), and the
//! command's errors are one line with a documented exit code and write nothing.

use crate::common;
use crate::export_schema;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use serde::Deserialize;
use serde_json::Value;

use common::{insta_settings, run, stderr, stdout, temp_project, xtask};
use xtask::export::{self, Format, Source};
use xtask::gates::{self, Bound, Config, Inputs, Verdict};
use xtask::slo::{self, Degrade, Snapshot};

const PROM: &str = "[prometheus]\nurl = \"http://prometheus.monitoring:9090\"\n";

/// The YAML documents of an export, as JSON values.
fn documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("the export is valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

// ---------------------------------------------------------------------------
// Argo's expressions, the subset the export writes: `len(result) > 0`,
// `len(result) == 0`, `isNaN(result[0])` and `result[0] OP NUMBER`, joined by `&&` (binding
// tighter) and `||`, evaluated left to right with short circuits as expr does.
// `Err` is what Argo would report as an evaluation error (index out of range).

fn eval_atom(atom: &str, result: &[f64]) -> Result<bool, String> {
    match atom {
        "len(result) > 0" => return Ok(!result.is_empty()),
        "len(result) == 0" => return Ok(result.is_empty()),
        "isNaN(result[0])" => {
            return result
                .first()
                .map(|v| v.is_nan())
                .ok_or_else(|| "index out of range: result[0]".into())
        }
        _ => {}
    }
    let (op, x) = comparison(atom);
    let v = *result.first().ok_or("index out of range: result[0]")?;
    Ok(match op {
        "<=" => v <= x,
        ">=" => v >= x,
        "<" => v < x,
        ">" => v > x,
        other => panic!("operator {other:?} in {atom:?}"),
    })
}

/// `result[0] OP NUMBER` → (OP, NUMBER); panics on any other form, so the
/// export cannot drift out of the subset these tests understand.
fn comparison(atom: &str) -> (&str, f64) {
    let parts: Vec<&str> = atom.split(' ').collect();
    match parts[..] {
        ["result[0]", op, n] => (op, n.parse().unwrap_or_else(|_| panic!("{atom:?}"))),
        _ => panic!("not a comparison the export writes: {atom:?}"),
    }
}

fn eval(condition: &str, result: &[f64]) -> Result<bool, String> {
    for term in condition.split(" || ") {
        let mut all = true;
        for atom in term.split(" && ") {
            if !eval_atom(atom, result)? {
                all = false;
                break;
            }
        }
        if all {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The one `result[0] OP N` comparison of a condition.
fn bound_of(condition: &str) -> (String, f64) {
    let atoms: Vec<&str> = condition
        .split(" || ")
        .flat_map(|t| t.split(" && "))
        .filter(|a| a.starts_with("result[0] "))
        .collect();
    assert_eq!(atoms.len(), 1, "{condition}");
    let (op, x) = comparison(atoms[0]);
    (op.to_string(), x)
}

#[test]
fn the_evaluator_follows_exprs_rules() {
    assert_eq!(eval("len(result) > 0 && result[0] <= 5", &[5.0]), Ok(true));
    assert_eq!(eval("len(result) > 0 && result[0] <= 5", &[]), Ok(false));
    assert_eq!(eval("len(result) == 0 || result[0] > 5", &[]), Ok(true));
    assert_eq!(eval("len(result) == 0 || result[0] > 5", &[5.5]), Ok(true));
    assert!(eval("result[0] > 5", &[]).is_err());
    let required = "len(result) == 0 || isNaN(result[0]) || result[0] > 5";
    assert_eq!(eval(required, &[f64::NAN]), Ok(true));
    assert_eq!(eval(required, &[4.0]), Ok(false));
    assert_eq!(
        eval("len(result) > 0 && result[0] <= 5", &[f64::NAN]),
        Ok(false)
    );
}

// ---------------------------------------------------------------------------
// The round trip.

/// A configuration that exercises every kind of objective: the defaults, a
/// required maximum without data, objectives without a warn bound.
const ROUND_TRIP_CONFIG: &str = r#"
[objectives.canary_20]
"Graph.1hop.p95_ms" = { max = 300, required = true }
[objectives.stage]
utilization = { max = 70 }
[objectives.production]
availability = { min = 99.9, required = true }
"#;

/// A query for every numeric metric, so that every objective travels.
fn every_query(config: &Config) -> BTreeMap<&str, &str> {
    let mut queries = BTreeMap::new();
    for stage in &config.stages {
        for (metric, o) in &stage.objectives {
            if !matches!(o.bound, Bound::Equals(_)) {
                queries.insert(metric.as_str(), "some_metric{job=\"x\"}[$window]");
            }
        }
    }
    queries
}

fn with_value(base: &Snapshot, metric: &str, value: Option<f64>) -> Snapshot {
    let mut s = base.clone();
    match metric {
        slo::AVAILABILITY => s.availability = value,
        slo::UTILIZATION => s.utilization = value,
        _ => {
            s.endpoints.remove(metric);
            if let Some(v) = value {
                s.endpoints.insert(metric.to_string(), v);
            }
        }
    }
    s
}

/// The local gate's verdict, threshold and warn bound for `metric` at `stage`.
fn local(config: &Config, stage: &str, observed: &Snapshot, metric: &str) -> (Verdict, f64, f64) {
    let inputs = Inputs {
        observed,
        observed_file: None,
        baseline: None,
        baseline_file: None,
        probe: None,
        probe_file: None,
        probe_metrics: Vec::new(),
    };
    let report = gates::judge(config, stage, &inputs, false, 0).unwrap();
    let check = report
        .checks
        .iter()
        .find(|c| c.metric == metric && serde_json::to_value(c.kind).unwrap() != "regression")
        .unwrap();
    let threshold = check.threshold.as_f64().unwrap();
    (check.verdict, threshold, check.warn.unwrap_or(threshold))
}

/// Values around a bound: on it, and the nearest doubles on either side.
fn around(x: f64) -> [f64; 3] {
    assert!(x > 0.0);
    [
        f64::from_bits(x.to_bits() - 1),
        x,
        f64::from_bits(x.to_bits() + 1),
    ]
}

#[test]
fn exported_thresholds_are_the_local_gates_and_judge_alike() {
    let config = Config::parse(ROUND_TRIP_CONFIG, "golive.toml").unwrap();
    let src = Source {
        config: &config,
        address: "http://prometheus.monitoring:9090",
        queries: every_query(&config),
        settings: &config.export,
    };
    let argo = documents(&export::render(&src, Format::Argo, None).unwrap().text);
    let base = slo::simulate("v", 0, 1, &Degrade::new());
    let mut compared = 0;
    for stage in &config.stages {
        let flagger = export::render(&src, Format::Flagger, Some(&stage.name)).unwrap();
        let flagger = documents(&flagger.text);
        let canary = flagger.iter().find(|d| d["kind"] == "Canary").unwrap();
        let template = argo
            .iter()
            .find(|d| d["metadata"]["annotations"]["golive.mc/stage"] == stage.name.as_str())
            .unwrap();
        for (metric, objective) in &stage.objectives {
            if matches!(objective.bound, Bound::Equals(_)) {
                continue;
            }
            let name = export::k8s_name(metric);
            let find = |list: &Value| {
                list.as_array()
                    .unwrap()
                    .iter()
                    .find(|m| m["name"] == name.as_str())
                    .cloned()
                    .unwrap_or_else(|| panic!("{}: {metric} not exported", stage.name))
            };
            let m = find(&template["spec"]["metrics"]);
            let success = m["successCondition"].as_str().unwrap();
            let failure = m["failureCondition"].as_str().unwrap();
            let range = find(&canary["spec"]["analysis"]["metrics"])["thresholdRange"].clone();

            // The thresholds are the ones the local gate judges with.
            let (_, pass, warn) = local(&config, &stage.name, &base, metric);
            let (op, x) = bound_of(success);
            let (fail_op, w) = bound_of(failure);
            assert_eq!(x, pass, "{}: {metric}: {success}", stage.name);
            assert_eq!(w, warn, "{}: {metric}: {failure}", stage.name);
            let key = if op == "<=" { "max" } else { "min" };
            assert_eq!(range[key].as_f64(), Some(pass), "{}: {metric}", stage.name);
            assert_eq!(range.as_object().unwrap().len(), 1);
            assert_eq!(
                (op.as_str(), fail_op.as_str()),
                if key == "max" {
                    ("<=", ">")
                } else {
                    (">=", "<")
                }
            );

            // Observations around both bounds, and far on either side, judge alike.
            let mut values: Vec<f64> = around(pass).into_iter().chain(around(warn)).collect();
            values.extend([(pass + warn) / 2.0, pass / 2.0, pass * 2.0, warn * 2.0]);
            for v in values {
                let (verdict, ..) = local(
                    &config,
                    &stage.name,
                    &with_value(&base, metric, Some(v)),
                    metric,
                );
                let argo_says = (eval(success, &[v]).unwrap(), eval(failure, &[v]).unwrap());
                let expected = match verdict {
                    Verdict::Pass => (true, false),
                    Verdict::Warn => (false, false), // Inconclusive
                    Verdict::Fail => (false, true),
                    Verdict::NoData => unreachable!(),
                };
                assert_eq!(
                    argo_says, expected,
                    "{}: {metric} = {v}: {verdict:?}",
                    stage.name
                );
                let within = range["max"].as_f64().is_none_or(|max| v <= max)
                    && range["min"].as_f64().is_none_or(|min| v >= min);
                assert_eq!(
                    within,
                    verdict == Verdict::Pass,
                    "{}: {metric} = {v}",
                    stage.name
                );
                compared += 1;
            }

            // No data (an empty vector, or NaN: a quantile over no traffic): a
            // required objective fails, an optional one is inconclusive.
            let no_data = local(
                &config,
                &stage.name,
                &with_value(&base, metric, None),
                metric,
            )
            .0;
            for result in [&[][..], &[f64::NAN]] {
                let argo_says = (
                    eval(success, result).unwrap(),
                    eval(failure, result).unwrap(),
                );
                match no_data {
                    Verdict::Fail => assert!(objective.required && argo_says == (false, true)),
                    Verdict::NoData => assert!(!objective.required && argo_says == (false, false)),
                    other => panic!("{metric} without data: {other:?}"),
                }
            }
        }
    }
    assert!(compared > 200, "{compared}");
}

#[test]
fn every_document_satisfies_its_crd() {
    let config = Config::parse(
        "[export]\nnamespace = \"shop\"\ntarget_kind = \"Service\"",
        "golive.toml",
    )
    .unwrap();
    let src = Source {
        config: &config,
        address: "http://prometheus.monitoring:9090",
        queries: every_query(&config),
        settings: &config.export,
    };
    for format in [Format::Argo, Format::Flagger] {
        let docs = documents(&export::render(&src, format, None).unwrap().text);
        assert!(!docs.is_empty());
        for doc in &docs {
            export_schema::check_document(doc).unwrap_or_else(|e| panic!("{e}\n{doc:#}"));
            assert_eq!(doc["metadata"]["namespace"], "shop");
        }
    }
}

#[test]
fn the_schema_check_can_fail() {
    let config = Config::default();
    let src = Source {
        config: &config,
        address: "http://p:9090",
        queries: every_query(&config),
        settings: &config.export,
    };
    let docs = documents(&export::render(&src, Format::Flagger, None).unwrap().text);
    let mut canary = docs.iter().find(|d| d["kind"] == "Canary").unwrap().clone();
    export_schema::check_document(&canary).unwrap();
    canary["spec"]["analysis"]
        .as_object_mut()
        .unwrap()
        .remove("stepWeights");
    let err = export_schema::check_document(&canary).unwrap_err();
    assert!(err.contains("exactly one of the field sets"), "{err}");
    let mut template =
        documents(&export::render(&src, Format::Argo, None).unwrap().text)[0].clone();
    template["spec"]["metrics"][0]["interval"] = Value::from(60);
    let err = export_schema::check_document(&template).unwrap_err();
    assert!(
        err.contains("$.spec.metrics[0].interval: not a string"),
        "{err}"
    );
    template["spec"]["metrics"][0]
        .as_object_mut()
        .unwrap()
        .remove("provider");
    let err = export_schema::check_document(&template).unwrap_err();
    assert!(err.contains("required `provider` missing"), "{err}");
}

// ---------------------------------------------------------------------------
// The command line.

fn export_cmd(root: &Path, args: &[&str]) -> Output {
    let mut all = vec!["gates", "export"];
    all.extend_from_slice(args);
    run(xtask(root).args(all))
}

#[track_caller]
fn assert_error(o: &Output, code: i32, needle: &str) {
    assert_eq!(o.status.code(), Some(code), "{}", stderr(o));
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("xtask: ") && err.contains(needle), "{err}");
    assert!(stdout(o).is_empty(), "nothing written: {}", stdout(o));
}

#[test]
fn exports_of_the_default_objectives_with_a_prometheus_section() {
    let p = temp_project();
    std::fs::write(p.path().join("golive.toml"), PROM).unwrap();
    for (format, name) in [("argo", "export_argo"), ("flagger", "export_flagger")] {
        let o = export_cmd(p.path(), &["--format", format]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let text = stdout(&o);
        for doc in documents(&text) {
            export_schema::check_document(&doc).unwrap_or_else(|e| panic!("{e}"));
        }
        // What was left out is listed on stderr and in the comment.
        let err = stderr(&o);
        for metric in [slo::READS, gates::RESIDENCY, "regression"] {
            assert!(
                err.contains(&format!("left out: {metric} (stages ")),
                "{err}"
            );
            assert!(text.contains(&format!("#   {metric} (stages ")), "{text}");
        }
        // Same configuration, same bytes.
        assert_eq!(stdout(&export_cmd(p.path(), &["--format", format])), text);
        insta_settings().bind(|| insta::assert_snapshot!(name, text));
    }
    let err = stderr(&export_cmd(p.path(), &["--format", "flagger"]));
    assert!(
        err.starts_with("flagger: thresholds of stage canary_50, step weights [20, 50]\n"),
        "{err}"
    );
}

#[test]
fn stage_picks_one_template_or_flaggers_bounds() {
    let p = temp_project();
    std::fs::write(p.path().join("golive.toml"), PROM).unwrap();
    let o = export_cmd(p.path(), &["--format", "argo", "--stage", "production"]);
    let docs = documents(&stdout(&o));
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["metadata"]["name"], "mc-production");
    let o = export_cmd(p.path(), &["--format", "flagger", "--stage", "canary_20"]);
    assert!(stderr(&o).starts_with("flagger: thresholds of stage canary_20,"));
    let text = stdout(&o);
    assert!(text.contains("# Thresholds of stage canary_20 "), "{text}");
    let canary = documents(&text).pop().unwrap();
    let metrics = &canary["spec"]["analysis"]["metrics"];
    assert_eq!(metrics[1]["name"], "availability");
    assert_eq!(metrics[1]["thresholdRange"]["min"], 99.88);
}

#[test]
fn out_writes_the_same_bytes_as_stdout() {
    let p = temp_project();
    std::fs::write(p.path().join("golive.toml"), PROM).unwrap();
    let printed = stdout(&export_cmd(p.path(), &["--format", "argo"]));
    let o = export_cmd(
        p.path(),
        &["--format", "argo", "--out", "deploy/analysis.yaml"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "wrote argo manifests → deploy/analysis.yaml\n");
    let written = std::fs::read_to_string(p.path().join("deploy/analysis.yaml")).unwrap();
    assert_eq!(written, printed);
}

#[test]
fn the_judging_command_line_is_unchanged() {
    let p = temp_project();
    let o = run(xtask(p.path()).args([
        "gates",
        "--stage",
        "canary_20",
        "--seed",
        "1",
        "--report",
        "out/g.json",
    ]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(p.path().join("out/g.json").is_file());
    let o = run(xtask(p.path()).args(["gates", "--stage", "canary_20"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--report <FILE>"), "{}", stderr(&o));
    let o = run(xtask(p.path()).args([
        "gates", "--stage", "x", "--report", "r.json", "export", "--format", "argo",
    ]));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn errors_are_one_line_with_their_exit_code_and_write_nothing() {
    let p = temp_project();
    let root = p.path();
    let write = |text: &str| std::fs::write(root.join("golive.toml"), text).unwrap();
    let out = ["--out", "out/x.yaml"];
    let args = |extra: &[&'static str]| {
        let mut a = vec!["--format", "argo"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&out);
        a
    };

    write("");
    assert_error(&export_cmd(root, &args(&[])), 1, "no Prometheus address");

    write(PROM);
    assert_error(
        &export_cmd(root, &args(&["--stage", "prod"])),
        2,
        "unknown stage \"prod\"",
    );
    let mut flagger = args(&["--stage", "prod"]);
    flagger[1] = "flagger";
    assert_error(&export_cmd(root, &flagger), 2, "unknown stage \"prod\"");

    write(&format!(
        "stages = [\"stage\", \"canary_20\", \"dark\"]\n{PROM}"
    ));
    assert_error(
        &export_cmd(root, &args(&[])),
        1,
        "stage \"dark\" has no objective with a Prometheus query",
    );

    write(&format!(
        "stages = [\"canary_20\", \"canary-20\"]\n{PROM}[objectives.canary-20]\navailability = {{ min = 99 }}\n"
    ));
    assert_error(
        &export_cmd(root, &args(&[])),
        1,
        "both become the AnalysisTemplate \"mc-canary-20\"",
    );

    write(&format!(
        "{PROM}[prometheus.queries]\n\"a.b\" = \"x\"\n\"a_b\" = \"y\"\n[objectives.stage]\n\"a.b\" = {{ max = 1 }}\n\"a_b\" = {{ max = 2 }}\n"
    ));
    assert_error(
        &export_cmd(root, &args(&[])),
        1,
        "\"a.b\" and \"a_b\" both become \"a-b\"",
    );

    write(&format!("stages = [\"stage\", \"production\"]\n{PROM}"));
    let mut flagger = args(&[]);
    flagger[1] = "flagger";
    assert_error(&export_cmd(root, &flagger), 1, "no canary stage");

    write(&format!("{PROM}[export]\ninterval = \"1h\"\n"));
    assert_error(
        &export_cmd(root, &args(&[])),
        1,
        "export.interval: \"1h\" is not a number of seconds or minutes",
    );
    write(&format!("{PROM}[export]\nname = \"My App\"\n"));
    assert_error(
        &export_cmd(root, &args(&[])),
        1,
        "export.name: \"My App\" is not a Kubernetes name",
    );

    // An output path that cannot be written: a directory is in the way.
    write(PROM);
    std::fs::create_dir_all(root.join("taken/x.yaml")).unwrap();
    let o = export_cmd(root, &["--format", "argo", "--out", "taken/x.yaml"]);
    assert_error(&o, 1, "taken/x.yaml");
    assert!(stderr(&o).contains("cannot write "));

    assert!(!root.join("out/x.yaml").exists(), "nothing written");
    let left: Vec<_> = std::fs::read_dir(root.join("taken")).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file left beside the target");
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let p = temp_project();
    std::fs::write(p.path().join("golive.toml"), PROM).unwrap();
    let mut child = xtask(p.path())
        .args(["gates", "export", "--format", "argo"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end at once, as `| head -0` would.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("cannot write"), "{}", stderr(&o));
}

#[test]
fn units_are_shown_and_never_rescaled() {
    let p = temp_project();
    // The gateway's p95 in seconds, against an objective in milliseconds.
    let seconds = "histogram_quantile(0.95, sum by (le) (rate(a2a_request_duration_seconds_bucket[$window])))";
    std::fs::write(
        p.path().join("golive.toml"),
        format!("{PROM}[prometheus.queries]\n\"A2A.perform.p95_ms\" = '{seconds}'\n"),
    )
    .unwrap();
    for format in ["argo", "flagger"] {
        let o = export_cmd(p.path(), &["--format", format]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let warning = "warning: A2A.perform.p95_ms is in ms but its query reads a _seconds series \
                       without `* 1000`; the threshold is compared with the query's result as it is";
        assert_eq!(stderr(&o).matches(warning).count(), 1, "{}", stderr(&o));
        let text = stdout(&o);
        assert!(text.contains(&format!("# {warning}\n")), "{text}");
        assert!(
            text.contains("A2A.perform.p95_ms in ms: pass <= 500"),
            "{text}"
        );
        let docs = documents(&text);
        match format {
            "argo" => assert_eq!(
                docs[0]["spec"]["metrics"][0]["successCondition"],
                "len(result) > 0 && result[0] <= 500"
            ),
            _ => assert_eq!(
                docs.last().unwrap()["spec"]["analysis"]["metrics"][0]["thresholdRange"]["max"],
                500.0
            ),
        }
    }
    // With the default query (`* 1000`) there is nothing to warn about.
    std::fs::write(p.path().join("golive.toml"), PROM).unwrap();
    let o = export_cmd(p.path(), &["--format", "argo"]);
    assert!(!stderr(&o).contains("warning:"), "{}", stderr(&o));
}
