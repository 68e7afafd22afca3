//! The gateway benchmark's traffic: a seeded stream of distinct
//! `/a2a/perform` requests, the way real agents would call the gateway, rather
//! than one request repeated (which a memo answers from its first entry).
//!
//! Every request has its own task (a ticket number that never repeats, a repo,
//! a goal, a list of files), one of a dozen agents, and a tenant, residency,
//! persisted query and purpose. About four in five are what the default policy
//! allows (a known tenant in one of its residencies, a listed query, a listed
//! purpose); the rest break one rule each: an unknown tenant (a hundred of
//! them), a residency the tenant may not use, an ad-hoc query, or a purpose
//! that is not allowed. The same seed gives the same stream on every machine.

use serde_json::{json, Value};

/// Tenants the default policy knows, with a residency each may use.
const KNOWN: [(&str, &[&str]); 3] = [
    ("TENANT_001", &["US"]),
    ("TENANT_002", &["EU"]),
    ("TENANT_003", &["US", "EU"]),
];
const QUERIES: [&str; 3] = ["pq.getPersonById", "pq.getCaseById", "pq.listCasesByTenant"];
const AD_HOC: [&str; 6] = [
    "pq.adHoc",
    "pq.exportAllPersons",
    "pq.searchFreeText",
    "pq.deleteCase",
    "pq.listAllTenants",
    "q.raw",
];
const PURPOSES: [&str; 3] = ["investigation", "audit", "support"];
const BAD_PURPOSES: [&str; 4] = ["marketing", "training", "analytics", ""];
const AGENTS: [&str; 12] = [
    "code-refactor",
    "case-summariser",
    "triage-bot",
    "report-writer",
    "data-steward",
    "audit-assistant",
    "support-copilot",
    "migration-helper",
    "test-writer",
    "doc-writer",
    "release-notes",
    "oncall-helper",
];
const GOALS: [&str; 8] = [
    "add pagination",
    "summarise the case history",
    "fix the flaky test",
    "draft the audit report",
    "explain the outage",
    "migrate to the new schema",
    "list open cases for the tenant",
    "review the access log",
];

/// Why a request of the stream should be denied (by the default policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Allow,
    UnknownTenant,
    Residency,
    AdHocQuery,
    Purpose,
}

/// SplitMix64, as the evidence data sets use.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// `n` distinct requests from `seed`, with what the default policy should
/// decide for each.
pub fn stream(seed: u64, n: usize) -> Vec<(Value, Expect)> {
    let mut rng = Rng(seed);
    (0..n).map(|i| request(&mut rng, i)).collect()
}

fn request(rng: &mut Rng, i: usize) -> (Value, Expect) {
    let (tenant, regions) = KNOWN[rng.below(KNOWN.len())];
    let mut tenant = tenant.to_string();
    let mut residency = rng.pick(regions).to_string();
    let mut pqid = rng.pick(&QUERIES).to_string();
    let mut purpose = rng.pick(&PURPOSES).to_string();
    // One in five breaks one rule.
    let expect = match rng.below(20) {
        0 => Expect::UnknownTenant,
        1 => Expect::Residency,
        2 => Expect::AdHocQuery,
        3 => Expect::Purpose,
        _ => Expect::Allow,
    };
    match expect {
        Expect::Allow => {}
        Expect::UnknownTenant => tenant = format!("TENANT_{:03}", 4 + rng.below(100)),
        Expect::Residency => {
            residency = match tenant.as_str() {
                "TENANT_001" => rng.pick(&["EU", "APAC"]),
                "TENANT_002" => rng.pick(&["US", "APAC"]),
                _ => "APAC",
            }
            .to_string()
        }
        Expect::AdHocQuery => pqid = rng.pick(&AD_HOC).to_string(),
        Expect::Purpose => purpose = rng.pick(&BAD_PURPOSES).to_string(),
    }
    let files: Vec<String> = (0..rng.below(4))
        .map(|_| format!("src/mod{}/lib.rs", rng.below(50)))
        .collect();
    let body = json!({
        "tenantId": tenant,
        "purpose": purpose,
        "residency": residency,
        "pqid": pqid,
        "agent": rng.pick(&AGENTS),
        "task": {
            "repo": format!("svc-{}", rng.below(40)),
            "goal": rng.pick(&GOALS),
            "ticket": format!("MC-{}", 10_000 + i),
            "priority": rng.below(4),
            "files": files,
        },
    });
    (body, expect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_distinct_seeded_and_about_a_fifth_denied() {
        let a = stream(7, 10_000);
        assert_eq!(a, stream(7, 10_000));
        assert_ne!(a[..10], stream(8, 10_000)[..10]);
        let distinct: std::collections::HashSet<String> =
            a.iter().map(|(v, _)| v.to_string()).collect();
        assert_eq!(distinct.len(), 10_000);
        let denied = a.iter().filter(|(_, e)| *e != Expect::Allow).count();
        assert!((1_500..2_500).contains(&denied), "{denied}");
    }

    #[test]
    fn the_default_policy_decides_as_the_stream_expects() {
        let policy = crate::a2a::Policy::load(&crate::a2a::PolicySource::Default).unwrap();
        for (body, expect) in stream(1, 2_000) {
            let d = policy.decide(&body).unwrap();
            assert_eq!(d.allow, expect == Expect::Allow, "{body} {d:?}");
        }
    }
}
