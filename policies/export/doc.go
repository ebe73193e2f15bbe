// Package export writes policies as native Kubernetes admission policies
// (MutatingAdmissionPolicy, ValidatingAdmissionPolicy and their bindings),
// with the pure doris-admission functions inlined, or says why a policy has
// no native equivalent. It imports ../engine (to check each policy as the
// server would load it), ../compile (its expressions), ../source,
// ../builtin and the policy model.
package export
