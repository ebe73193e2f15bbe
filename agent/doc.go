// Package agent is what runs inside a Doris pod: the init container that
// prepares the conf, and the lifecycle hooks that register an FE or BE with
// the cluster and decommission a BE that leaves for good. It speaks the MySQL
// protocol to the FE and reads its own StatefulSet from the API server.
package agent
