// Package node runs a one-node Kubernetes cluster for the e2e suite, on this
// machine, from binaries built from source (test/controlplane/build.sh) and
// Debian's containerd, runc and CNI plugins: containerd with its own config,
// root and socket in a temporary folder; the kubelet; a CNI bridge with
// host-local IPAM; kube-controller-manager and kube-scheduler; kube-proxy in
// iptables mode; and CoreDNS serving cluster.local on the node's address. It
// joins an API server that is already running (envtest's, in the suite).
//
// Stop removes everything it started, pass or fail: pods (so that CNI frees
// their network namespaces and rules), processes, mounts, cgroups, the
// bridge, kube-proxy's iptables rules, and the kernel settings the kubelet
// changes are put back.
package node
