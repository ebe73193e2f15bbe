// Package engine is the runtime: it loads compiled policies (Load swaps the
// set atomically), and evaluates admission requests against them, as native
// admission policies do: matching (rules and selectors, no CEL) first, then
// matchConditions, then variables, validations and mutations (Mutate,
// Validate), the generate expressions (Generate) and the audit's
// evaluation of stored objects (Audit). It reads parameters and settings
// through a source.ObjectSource, and counts what it does in Prometheus
// metrics. It imports ../compile, ../jsonpatch, ../source, ../builtin and
// the policy model; the webhook server, the commands, the audit and the
// generate controller use the engine, never ../compile.
package engine
