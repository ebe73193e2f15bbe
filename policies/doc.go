// Package policies is the CEL policy engine. It loads MutatingPolicy and
// ValidatingPolicy objects, compiles each once per generation with the
// Kubernetes CEL environment, and evaluates them against admission requests:
// matching (rules and selectors, no CEL) first, then matchConditions, then
// variables, validations and mutations, as native admission policies do.
package policies
