// Package policies is the policy model and its input: the Policy type (a
// MutatingPolicy or ValidatingPolicy and where it came from), and reading
// YAML and JSON documents from files, folders and stdin into objects and
// policies, strictly. It imports only the API types (./api/v1alpha1).
//
// The engine is built on it in layers, each a package with one job
// (docs/architecture.md draws them): ./jsonpatch applies patches, ./compile
// turns a policy into evaluators, ./engine evaluates requests, ./source and
// ./builtin say where its world and its policies come from, ./cluster
// keeps it loaded with the cluster's policies, ./export writes native
// policies.
package policies
