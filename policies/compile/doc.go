// Package compile turns a policy into evaluators, once per generation, in
// the Kubernetes CEL environment with the functions of ../library: matching
// criteria, match conditions, variables, validations, mutations and
// generate expressions (Compiled). Alongside it analyses the policy: type
// checking against the matched kinds' schemas, estimated costs, what a
// mutation reads of the object (reinvocation), its webhook group; and it
// charges every evaluation to the request's CEL budget. It imports the
// policy model, ../jsonpatch, ../library and ../inventory; only the engine
// and the packages above it use it.
package compile
