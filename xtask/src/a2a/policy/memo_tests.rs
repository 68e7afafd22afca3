//! The memo and the restricted input must never change a decision: for
//! policies that read some fields, more fields, nested fields, the whole
//! input, or a nondeterministic builtin, every decision through
//! [`Policy::decide`] and [`Policy::decide_keyed`] equals a fresh evaluation
//! of the whole input, over seeded inputs that repeat, reorder keys, drop
//! fields and change types.

use super::*;
use serde_json::{json, Value as Json};

/// A policy that reads one field more than the default (`agent`) and one
/// nested field of `task`.
const READS_MORE: &str = r#"package a2a
default allow := false
allow if {
	input.tenantId == "TENANT_001"
	input.agent != "rogue"
	not input.task.goal == "drop tables"
}
default goal := "-"
goal := input.task.goal
default agent := "-"
agent := input.agent
decision := {"allow": allow, "reasons": [sprintf("%v/%v", [agent, goal])]}
"#;

/// A policy that reads the input wholesale: the number of fields and any
/// value equal to "secret".
const READS_ALL: &str = r#"package a2a
leaks contains k if {
	some k, v in input
	v == "secret"
}
decision := {"allow": count(leaks) == 0, "reasons": [sprintf("%d fields", [count(input)])]}
"#;

/// Reads fields by bracket and through a helper rule.
const BRACKETS: &str = r#"package a2a
default t := "-"
t := input["tenantId"]
default task := "-"
task := input["task"]
decision := {"allow": t == "TENANT_002", "reasons": [sprintf("%v %v", [t, task])]}
"#;

/// Seeded inputs: each field drawn from a small pool (so inputs repeat and
/// share fields) including missing, null, numbers, nested objects with keys
/// in either order, and strings that need escaping.
fn inputs(seed: u64, n: usize) -> Vec<Json> {
    let mut x = seed;
    let mut next = move |m: usize| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((x >> 33) % m as u64) as usize
    };
    let tenants = [
        json!("TENANT_001"),
        json!("TENANT_002"),
        json!("TENANT_009"),
        json!(null),
        json!(1),
    ];
    let residencies = [json!("US"), json!("EU"), json!("APAC")];
    let pqids = [
        json!("pq.getPersonById"),
        json!("pq.adHoc"),
        json!("pq.\"quoted\"\n"),
    ];
    let purposes = [json!("investigation"), json!("audit"), json!("marketing")];
    let agents = [json!("code-refactor"), json!("rogue"), json!("secret")];
    let tasks = [
        json!({"repo": "svc-api", "goal": "add pagination"}),
        json!({"goal": "add pagination", "repo": "svc-api"}),
        json!({"goal": "drop tables"}),
        json!({"repo": "secret"}),
        json!({}),
    ];
    (0..n)
        .map(|_| {
            let mut obj = serde_json::Map::new();
            let fields: [(&str, &[Json]); 6] = [
                ("tenantId", &tenants),
                ("residency", &residencies),
                ("pqid", &pqids),
                ("purpose", &purposes),
                ("agent", &agents),
                ("task", &tasks),
            ];
            for (name, pool) in fields {
                // One field in eight is missing.
                if next(8) > 0 {
                    obj.insert(name.to_string(), pool[next(pool.len())].clone());
                }
            }
            if next(10) == 0 {
                obj.insert("extra".to_string(), json!("secret"));
            }
            Json::Object(obj)
        })
        .collect()
}

fn assert_memo_is_transparent(name: &str, rego: &str) -> Policy {
    let policy = Policy::from_text(name, rego).unwrap();
    for (i, input) in inputs(42, 600).iter().enumerate() {
        let fresh = policy.evaluate(input).unwrap();
        let memo = policy.decide(input).unwrap();
        assert_eq!(*memo, fresh, "{name}: decide, input {i}: {input}");
        let body = serde_json::to_vec(input).unwrap();
        let keyed = policy.decide_keyed(&body, input).unwrap();
        assert_eq!(*keyed, fresh, "{name}: decide_keyed, input {i}: {input}");
    }
    let stats = policy.memo_stats();
    assert!(
        stats.hits > 0 && stats.hits < stats.lookups,
        "{name}: {stats:?}"
    );
    policy
}

#[test]
fn the_default_policy_is_memoised_by_the_four_fields_it_reads() {
    let p = assert_memo_is_transparent("a2a.rego", DEFAULT_POLICY);
    assert_eq!(
        p.input_fields().unwrap(),
        ["pqid", "purpose", "residency", "tenantId"]
    );
}

#[test]
fn a_policy_that_reads_more_fields_is_keyed_by_them() {
    let p = assert_memo_is_transparent("more.rego", READS_MORE);
    assert_eq!(p.input_fields().unwrap(), ["agent", "task", "tenantId"]);
    // Two inputs equal in the default policy's fields but not in `task.goal`.
    let mut a = json!({"tenantId": "TENANT_001", "agent": "x", "task": {"goal": "fix"}});
    assert!(p.decide(&a).unwrap().allow);
    a["task"]["goal"] = json!("drop tables");
    assert!(!p.decide(&a).unwrap().allow);
}

#[test]
fn a_policy_that_reads_the_whole_input_is_keyed_by_all_of_it() {
    let p = assert_memo_is_transparent("all.rego", READS_ALL);
    assert_eq!(p.input_fields(), None);
    let mut a = json!({"tenantId": "TENANT_001", "task": {}});
    assert!(p.decide(&a).unwrap().allow);
    a["unlisted"] = json!("secret");
    let d = p.decide(&a).unwrap();
    assert!(!d.allow);
    assert_eq!(d.reasons, ["3 fields"]);
}

#[test]
fn a_policy_that_reads_by_brackets_is_keyed_by_those_fields() {
    let p = assert_memo_is_transparent("brackets.rego", BRACKETS);
    assert_eq!(p.input_fields().unwrap(), ["task", "tenantId"]);
}

#[test]
fn a_nondeterministic_policy_is_evaluated_every_time() {
    let sampled = "package a2a\n# sample one request in ten\ndecision := {\"allow\": rand.intn(\"canary\", 10) == 0, \"reasons\": [tenant]}\ndefault tenant := \"-\"\ntenant := input.tenantId\n\n";
    let p = Policy::from_text("sampled.rego", sampled).unwrap();
    assert!(!p.memoised());
    let input = json!({"tenantId": "TENANT_001", "task": {}});
    let allows = (0..300).filter(|_| p.decide(&input).unwrap().allow).count();
    assert!(
        allows > 0 && allows < 300,
        "rand.intn is evaluated per request: {allows}"
    );
    let keyed = (0..300)
        .filter(|_| p.decide_keyed(b"same body", &input).unwrap().allow)
        .count();
    assert!(keyed > 0 && keyed < 300, "decide_keyed too: {keyed}");
    assert_eq!(p.memo_stats().lookups, 0);
}

#[test]
fn a_policy_naming_a_nondeterministic_builtin_is_not_memoised() {
    for root in NONDETERMINISTIC_ROOTS {
        // The builtin may not exist in this build; a rule that is never
        // evaluated still names it, and naming it is enough.
        let rego = format!(
            "package a2a\ndecision := {{\"allow\": true, \"reasons\": []}}\nunused if {root}.anything(1)\n"
        );
        match Policy::from_text("nd.rego", &rego) {
            Ok(p) => assert!(!p.memoised(), "{root}"),
            Err(e) => assert!(format!("{e:#}").contains(root), "{root}: {e:#}"),
        }
    }
}

#[test]
fn inputs_that_are_not_objects_are_decided_whole() {
    let p = Policy::load(&PolicySource::Default).unwrap();
    for input in [json!([1, 2]), json!("TENANT_001"), json!(null), json!(7)] {
        assert_eq!(
            *p.decide(&input).unwrap(),
            p.evaluate(&input).unwrap(),
            "{input}"
        );
    }
}
