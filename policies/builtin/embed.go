// Package builtin holds the policies that ship with doris-admission: plain
// policy YAML, loaded by the same code as user policies. They read their
// settings from the ConfigMap in ./settings, which the server looks up in its
// own namespace; a key the cluster's copy leaves out keeps its default.
// Builtin reads them as policies. It imports only the policy model.
package builtin

import "embed"

// Policies are the built-in MutatingPolicy and ValidatingPolicy files.
//
//go:embed *.yaml
var Policies embed.FS

// Settings is the default settings ConfigMap of the built-in policies.
//
//go:embed settings/settings.yaml
var Settings []byte
