//! The gateway's policy: a Rego module evaluated with `regorus`, the Rust
//! implementation of OPA's Rego, so the file a team runs in OPA is the file the
//! kit rehearses with.
//!
//! The contract with a policy is one rule: `data.a2a.decision`, evaluated with
//! the request body as `input`, must give `{"allow": bool, "reasons": [string]}`.
//! The default policy (`xtask/policy/a2a.rego`, embedded in the binary) allows
//! the seed's example request and denies, with reasons, an unknown tenant, a
//! residency the tenant may not use, a `pqid` that is not on the persisted-query
//! allowlist (`persisted_only`) and an unlisted purpose. OPA's data API is
//! served from the same engine ([`Policy::query`]).
//!
//! A regorus `Engine` needs `&mut self` to evaluate, so one engine cannot be
//! shared between requests without a lock held for the whole evaluation. The
//! policy is compiled once into a template; each evaluation takes an engine out
//! of a small pool (cloning the template when the pool is empty) and puts it
//! back afterwards. The pool's lock is held only for the pop and the push, so
//! the tokio workers evaluate in parallel; the pool never holds more engines
//! than there were concurrent evaluations.
//!
//! Evaluating Rego allocates a great deal (regorus rebuilds the policy's
//! constant sets and the input's objects on every evaluation), and it was most
//! of the gateway's CPU time under load. Two things make it cheap on real
//! traffic, where no two requests are equal but most share the fields a policy
//! looks at:
//!
//! * **The policy is given only what it reads.** [`scan`] finds the top-level
//!   input fields the policy's text names (`input.tenantId`,
//!   `input["pqid"]`); when every use of `input` is such a field, the engine's
//!   input is the request restricted to those fields, so a large `task` that
//!   the policy never looks at is not converted. A policy that uses `input` in
//!   any other way (`input[k]`, `walk(input)`, `import input as i`) gets all
//!   of it.
//! * **Decisions are memoised per distinct value of those fields.** A policy
//!   is a pure function of its input unless it calls a builtin whose answer
//!   changes between calls (`rand.intn`, `time.now_ns`, `uuid.rfc4122`,
//!   `opa.runtime`, `http.send`, `net.lookup_ip_addr`: [`scan`] marks any use
//!   of those namespaces). A deterministic policy's decision is a function of
//!   the fields it reads, so the memo key is their values (canonical JSON,
//!   with "missing" told apart from `null`); a policy that reads more of the
//!   input (say `input.task.goal`) has that field in its key, and one that
//!   reads the input wholesale is keyed by all of it. Keys over 4 KiB are not
//!   memoised; at most 4,096 decisions are kept (cleared when full). A
//!   nondeterministic policy is evaluated every time. The decision log still
//!   gets one line per request either way; [`Policy::memo_stats`] counts
//!   lookups and hits.

mod scan;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::{bail, Context, Result};
use regorus::{Engine, Value};

pub use scan::{scan, Reads, NONDETERMINISTIC_ROOTS};

/// The default policy, `xtask/policy/a2a.rego`.
pub const DEFAULT_POLICY: &str = include_str!("../../policy/a2a.rego");

/// The rule the gateway asks for every `/a2a/perform` request.
pub const DECISION_RULE: &str = "data.a2a.decision";

/// Where a policy comes from.
#[derive(Debug, Clone)]
pub enum PolicySource {
    /// The built-in policy.
    Default,
    /// A Rego file on disk.
    File(std::path::PathBuf),
    /// Rego text (the name is used in error messages).
    Text { name: String, rego: String },
}

/// A policy's answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allow: bool,
    pub reasons: Vec<String>,
    /// `{"allow":..,"reasons":[..]}` as compact JSON: the response's
    /// `result.policy`, already in canonical form (its keys are sorted).
    json: String,
}

impl Decision {
    fn new(allow: bool, reasons: Vec<String>) -> Decision {
        let json = serde_json::to_string(&serde_json::json!({"allow": allow, "reasons": reasons}))
            .expect("a JSON value serialises");
        Decision {
            allow,
            reasons,
            json,
        }
    }

    /// The decision as the compact, canonical JSON of `result.policy`.
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// How often the memo answered, since the policy was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct MemoStats {
    /// Whether the policy's decisions are memoised at all.
    pub enabled: bool,
    /// Decisions asked of the memo.
    pub lookups: u64,
    /// Decisions the memo answered without evaluating.
    pub hits: u64,
}

/// A compiled Rego policy, safe to evaluate from many threads at once.
pub struct Policy {
    name: String,
    template: Engine,
    pool: Mutex<Vec<Engine>>,
    /// The top-level input fields the policy reads, sorted; `None` when it
    /// may read the whole input.
    fields: Option<Box<[String]>>,
    /// Memoised decisions, when the policy is deterministic.
    memo: Option<Memo>,
    lookups: AtomicU64,
    hits: AtomicU64,
}

/// Decisions by memo key (see [`Policy::decide_keyed`]).
type Memo = RwLock<HashMap<Box<[u8]>, Arc<Decision>>>;

/// Inputs whose key is longer than this are not memoised.
const MEMO_MAX_KEY: usize = 4096;
/// The memo is cleared when it holds this many decisions.
const MEMO_MAX_ENTRIES: usize = 4096;

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy").field("name", &self.name).finish()
    }
}

impl Policy {
    /// Loads and checks a policy: it must parse and `data.a2a.decision` must be
    /// defined by it.
    pub fn load(source: &PolicySource) -> Result<Policy> {
        let (name, rego) = match source {
            PolicySource::Default => (
                "a2a.rego (built-in)".to_string(),
                DEFAULT_POLICY.to_string(),
            ),
            PolicySource::File(path) => (
                path.display().to_string(),
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read policy {}", path.display()))?,
            ),
            PolicySource::Text { name, rego } => (name.clone(), rego.clone()),
        };
        Self::from_text(&name, &rego)
    }

    /// Compiles Rego text; `name` names it in errors.
    pub fn from_text(name: &str, rego: &str) -> Result<Policy> {
        let mut engine = Engine::new();
        engine
            .add_policy(name.to_string(), rego.to_string())
            .map_err(|e| anyhow::anyhow!("policy {name}: {e}"))?;
        let packages = engine
            .get_packages()
            .map_err(|e| anyhow::anyhow!("policy {name}: {e}"))?;
        if !packages.iter().any(|p| p == "data.a2a") {
            bail!("policy {name}: must declare `package a2a` (found {packages:?})");
        }
        let reads = scan(rego);
        let policy = Policy {
            name: name.to_string(),
            template: engine,
            pool: Mutex::new(Vec::new()),
            fields: reads.fields.map(|f| f.into_iter().collect()),
            memo: reads
                .nondeterministic
                .is_empty()
                .then(|| RwLock::new(HashMap::new())),
            lookups: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        };
        // Evaluate once with an empty input so a policy without a usable
        // `decision` rule fails at start, not on the first request.
        policy
            .evaluate(&serde_json::json!({}))
            .with_context(|| format!("policy {name}: `{DECISION_RULE}` does not evaluate"))?;
        Ok(policy)
    }

    /// The name the policy was loaded under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether decisions are memoised (the policy calls no nondeterministic builtin).
    pub fn memoised(&self) -> bool {
        self.memo.is_some()
    }

    /// The top-level input fields the policy reads, sorted, or `None` when it
    /// may read the whole input.
    pub fn input_fields(&self) -> Option<&[String]> {
        self.fields.as_deref()
    }

    /// How often the memo was asked and how often it answered.
    pub fn memo_stats(&self) -> MemoStats {
        MemoStats {
            enabled: self.memo.is_some(),
            lookups: self.lookups.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
        }
    }

    /// Evaluates `data.a2a.decision` for `input` (or recalls the decision of
    /// an input equal in every field the policy reads; see the module
    /// documentation).
    pub fn decide(&self, input: &serde_json::Value) -> Result<Arc<Decision>> {
        match self.projection(input) {
            Some((fields, obj)) => self.decide_projected(fields, obj),
            None => self.recall(super::canonical_json(input).as_bytes(), || {
                self.evaluate(input)
            }),
        }
    }

    /// [`Policy::decide`] with a memo key for when the policy reads the whole
    /// input: bytes that determine `input`, such as the request body it was
    /// parsed from. Equal keys must mean equal inputs; equal inputs may have
    /// different keys (a miss). When the policy reads only some fields of an
    /// object input, the key is made of those fields and `key` is not used.
    pub fn decide_keyed(&self, key: &[u8], input: &serde_json::Value) -> Result<Arc<Decision>> {
        match self.projection(input) {
            Some((fields, obj)) => self.decide_projected(fields, obj),
            None => self.recall(key, || self.evaluate(input)),
        }
    }

    /// The fields to restrict `input` to, when the policy reads only some of
    /// an object's fields.
    fn projection<'a>(
        &'a self,
        input: &'a serde_json::Value,
    ) -> Option<(&'a [String], &'a serde_json::Map<String, serde_json::Value>)> {
        Some((self.fields.as_deref()?, input.as_object()?))
    }

    fn decide_projected(
        &self,
        fields: &[String],
        obj: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Arc<Decision>> {
        let evaluate = || {
            let projected: serde_json::Map<String, serde_json::Value> = fields
                .iter()
                .filter_map(|f| Some((f.clone(), obj.get(f)?.clone())))
                .collect();
            self.evaluate_value(Value::from(serde_json::Value::Object(projected)))
        };
        if self.memo.is_none() {
            return evaluate().map(Arc::new);
        }
        self.recall(&projection_key(fields, obj), evaluate)
    }

    /// The memoised decision for `key`, else `evaluate`'s (remembered).
    fn recall(
        &self,
        key: &[u8],
        evaluate: impl FnOnce() -> Result<Decision>,
    ) -> Result<Arc<Decision>> {
        let Some(memo) = &self.memo else {
            return evaluate().map(Arc::new);
        };
        if key.len() > MEMO_MAX_KEY {
            return evaluate().map(Arc::new);
        }
        self.lookups.fetch_add(1, Ordering::Relaxed);
        if let Some(d) = memo.read().unwrap_or_else(|e| e.into_inner()).get(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(d.clone());
        }
        let decision = Arc::new(evaluate()?);
        let mut map = memo.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MEMO_MAX_ENTRIES {
            map.clear();
        }
        map.insert(key.into(), decision.clone());
        Ok(decision)
    }

    /// Evaluates the policy for the whole of `input`, without the memo.
    fn evaluate(&self, input: &serde_json::Value) -> Result<Decision> {
        self.evaluate_value(Value::from(input.clone()))
    }

    fn evaluate_value(&self, input: Value) -> Result<Decision> {
        let value = self.with_engine(|engine| {
            engine.set_input(input);
            engine.eval_rule(DECISION_RULE.to_string())
        })?;
        decision_from(&value)
    }

    /// Evaluates a dotted reference (`data.a2a.allow`, `data.a2a`) for OPA's
    /// data API; `None` when it is undefined.
    pub fn query(
        &self,
        reference: &str,
        input: Option<&serde_json::Value>,
    ) -> Result<Option<serde_json::Value>> {
        let results = self.with_engine(|engine| {
            match input {
                Some(input) => engine.set_input(Value::from(input.clone())),
                None => engine.set_input(Value::Undefined),
            }
            engine.eval_query(reference.to_string(), false)
        })?;
        let Some(value) = results
            .result
            .first()
            .and_then(|r| r.expressions.first())
            .map(|e| &e.value)
        else {
            return Ok(None);
        };
        if *value == Value::Undefined {
            return Ok(None);
        }
        let json = value
            .to_json_str()
            .map_err(|e| anyhow::anyhow!("policy {}: {e}", self.name))?;
        Ok(Some(serde_json::from_str(&json)?))
    }

    fn with_engine<T>(
        &self,
        f: impl FnOnce(&mut Engine) -> std::result::Result<T, anyhow::Error>,
    ) -> Result<T> {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut engine = pooled.unwrap_or_else(|| self.template.clone());
        let out = f(&mut engine).map_err(|e| anyhow::anyhow!("policy {}: {e}", self.name));
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(engine);
        out
    }
}

/// The memo key of an object input for a policy that reads only `fields`:
/// per field (in sorted order), 1 and its value's canonical JSON, or 2 when the
/// field is missing, each ended by a 0 byte (compact JSON holds no raw control
/// bytes, so the key is unambiguous).
fn projection_key(fields: &[String], obj: &serde_json::Map<String, serde_json::Value>) -> Vec<u8> {
    let mut key = Vec::with_capacity(16 * fields.len());
    for f in fields {
        match obj.get(f) {
            Some(v) => {
                key.push(1);
                super::write_canonical(v, &mut key);
            }
            None => key.push(2),
        }
        key.push(0);
    }
    key
}

fn decision_from(value: &Value) -> Result<Decision> {
    if *value == Value::Undefined {
        bail!("`{DECISION_RULE}` is undefined for this input");
    }
    let allow = match &value["allow"] {
        Value::Bool(b) => *b,
        other => bail!("`{DECISION_RULE}.allow` must be a boolean, got {other}"),
    };
    let reasons = match &value["reasons"] {
        Value::Undefined => Vec::new(),
        Value::Array(items) => items.iter().map(value_text).collect(),
        Value::Set(items) => items.iter().map(value_text).collect(),
        other => bail!("`{DECISION_RULE}.reasons` must be an array of strings, got {other}"),
    };
    Ok(Decision::new(allow, reasons))
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod memo_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed_input() -> serde_json::Value {
        json!({"tenantId":"TENANT_001","purpose":"investigation","residency":"US",
               "pqid":"pq.getPersonById","agent":"code-refactor",
               "task":{"repo":"svc-api","goal":"add pagination"}})
    }

    #[test]
    fn default_policy_allows_the_seed_request() {
        let p = Policy::load(&PolicySource::Default).unwrap();
        let d = p.decide(&seed_input()).unwrap();
        assert!(d.allow, "{d:?}");
        assert_eq!(d.reasons.len(), 2);
    }

    #[test]
    fn default_policy_denies_residency_and_pqid() {
        let p = Policy::load(&PolicySource::Default).unwrap();
        let mut input = seed_input();
        input["residency"] = json!("EU");
        input["pqid"] = json!("pq.adHoc");
        let d = p.decide(&input).unwrap();
        assert!(!d.allow);
        assert_eq!(
            d.reasons,
            [
                "pqid pq.adHoc is not on the persisted-query allowlist (persisted_only)",
                "residency EU is not allowed for tenant TENANT_001",
            ]
        );
    }

    #[test]
    fn memoised_decisions_equal_evaluated_ones() {
        let p = Policy::load(&PolicySource::Default).unwrap();
        let mut input = seed_input();
        for residency in ["US", "EU", "US", "EU"] {
            input["residency"] = json!(residency);
            assert_eq!(*p.decide(&input).unwrap(), p.evaluate(&input).unwrap());
        }
    }

    #[test]
    fn a_policy_without_the_decision_rule_is_refused() {
        let err = Policy::from_text("x.rego", "package a2a\nallow := true\n").unwrap_err();
        assert!(format!("{err:#}").contains("data.a2a.decision"), "{err:#}");
        let err = Policy::from_text("y.rego", "package other\ndecision := 1\n").unwrap_err();
        assert!(format!("{err:#}").contains("package a2a"), "{err:#}");
    }
}
