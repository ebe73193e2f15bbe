// Package library holds the CEL functions doris-admission adds to the
// Kubernetes policy environment, for what CEL alone would say unreadably.
// Policies decide the behaviour; these functions only answer questions.
//
//   - dorisRole(object) string: "fe" or "be" when object is a StatefulSet of
//     an Apache Doris frontend or backend, else "".
//   - dorisContainer(object) int: the index of the Doris container in the
//     StatefulSet's pod template, or -1.
//   - dorisPort(object, name) int: the Doris port called name (query,
//     edit-log, http, rpc, be, webserver, heartbeat, brpc): annotation
//     doris.apache.org/<name>-port, else the Doris container's port named
//     <name>-port or <name>, else the Doris default.
//   - dorisFEService(object, namespace) string: the Service in namespace
//     that selects the pods of the FE StatefulSet of this BE's cluster, or "".
//   - dorisSelectedPorts(service, namespace) list(int): the declared ports of
//     the Doris containers whose pods the Service selects, or [].
//   - dorisConfDir(object) string: the Doris conf dir: annotation
//     doris.apache.org/conf-dir, else /opt/apache-doris/<role>/conf.
//   - dorisMountedConf(object, namespace) string: the fe.conf or be.conf the
//     user mounts from a ConfigMap over the conf dir, or "".
//   - dorisService(namespace, name) dyn: the Service namespace/name in the
//     cluster, or null.
//   - dorisStatefulSetRole(namespace, name) string: the Doris role of the
//     StatefulSet namespace/name in the cluster, or "" (for requests on its
//     scale subresource, which carry only a Scale).
//   - dorisVersion(object) string: the Doris version, from the Doris
//     container's image tag, else the annotation or label
//     doris.apache.org/version, or "".
//   - dorisHostMode(object, oldObject, defaultVersion) string: "fqdn" or
//     "ip", how the StatefulSet's nodes are known (see HostMode).
//
// The pure ones (dorisRole, dorisContainer, dorisPort, dorisConfDir,
// dorisVersion, dorisHostMode) have
// plain CEL equivalents in cel.go, which policy export inlines; a policy that
// calls one of the others reads the cluster and cannot be exported as a
// native admission policy.
package library
