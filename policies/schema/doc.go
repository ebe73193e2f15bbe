// Package schema resolves the OpenAPI schema of a Kubernetes kind, so policy
// expressions are type-checked against the fields the kind really has: built-in
// kinds from a snapshot of kube-apiserver's OpenAPI v3 documents embedded in the
// binary, other kinds from the cluster's discovery when one is at hand.
package schema
