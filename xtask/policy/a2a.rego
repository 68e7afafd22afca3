# The default A2A gateway policy of the MC go-live kit (Rego v1).
#
# The gateway evaluates `data.a2a.decision` with the request body as `input`
# and expects `{"allow": bool, "reasons": [string]}`. A policy passed with
# `--policy FILE` must keep `package a2a` and the `decision` rule; everything
# else is the policy's own business. The same file runs unchanged in OPA:
#   opa eval -d a2a.rego -i request.json 'data.a2a.decision'
package a2a

# Data residencies each tenant may use. A tenant that is not listed is denied.
tenant_residency := {
	"TENANT_001": {"US"},
	"TENANT_002": {"EU"},
	"TENANT_003": {"US", "EU"},
}

# Persisted-query allowlist (`persisted_only`): agents may only run queries
# that were reviewed and registered ahead of time, never ad-hoc ones.
persisted_queries := {
	"pq.getPersonById",
	"pq.getCaseById",
	"pq.listCasesByTenant",
}

# Purposes an agent may state for its access.
allowed_purposes := {"investigation", "audit", "support"}

# The request's fields, with a placeholder when one is missing, so that the
# deny messages below are defined for every input.
default tenant := "(missing)"

tenant := input.tenantId

default residency := "(missing)"

residency := input.residency

default pqid := "(missing)"

pqid := input.pqid

default purpose := "(missing)"

purpose := input.purpose

# Allow only what every rule positively accepts (deny by default).
default allow := false

allow if {
	regions := tenant_residency[input.tenantId]
	regions[input.residency]
	persisted_queries[input.pqid]
	allowed_purposes[input.purpose]
}

deny contains msg if {
	not tenant_residency[tenant]
	msg := sprintf("tenant %v is not known to the gateway", [tenant])
}

deny contains msg if {
	regions := tenant_residency[tenant]
	not regions[residency]
	msg := sprintf("residency %v is not allowed for tenant %v", [residency, tenant])
}

deny contains msg if {
	not persisted_queries[pqid]
	msg := sprintf("pqid %v is not on the persisted-query allowlist (persisted_only)", [pqid])
}

deny contains msg if {
	not allowed_purposes[purpose]
	msg := sprintf("purpose %v is not allowed", [purpose])
}

reasons := [
	sprintf("residency %v is allowed for tenant %v", [residency, tenant]),
	sprintf("pqid %v is a persisted query", [pqid]),
] if {
	allow
} else := sort(deny) if {
	count(deny) > 0
} else := ["denied: the request does not satisfy the policy"]

decision := {"allow": allow, "reasons": reasons}
