// Package agent is what runs inside a Doris pod (cmd/doris-admission-agent):
// the init container that prepares the conf, and the lifecycle hooks that
// register an FE or BE with the cluster and decommission a BE that leaves for
// good. It speaks the MySQL protocol to the FE and reads its own pod and
// StatefulSet from the API server. Everything that goes over the network is
// bounded by the command's deadline and tried again while it may pass
// (retry.go); every value that goes into a statement is checked
// (statements.go). It imports none of the server: it is copied into every
// Doris pod and must stay small.
package agent
