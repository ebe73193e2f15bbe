package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/doris-admission/doris-admission/test/fakefe"
)

// TestBEDecommissionReadsTheStatefulSet runs the agent's preStop command as
// a BE pod's service account, bound by deploy/agent/rbac.yaml, against the
// real API server and a fake FE, on pods the StatefulSet controller made and
// deleted. The StatefulSet's ordinals start at 3: the pod it keeps (deleted
// for a restart) is left alone, the one a scale-down deletes is
// decommissioned until it is gone, and once the StatefulSet is scaled to 0 no
// BE is decommissioned.
func TestBEDecommissionReadsTheStatefulSet(t *testing.T) {
	agentBin := filepath.Join(t.TempDir(), "doris-admission-agent")
	build := exec.Command("go", "build", "-o", agentBin, "./cmd/doris-admission-agent")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the agent: %v\n%s", err, out)
	}
	rbac := filepath.Join(repoRoot, "deploy", "agent", "rbac.yaml")
	if out, err := suite.kubectl("apply", "-n", "default", "-f", rbac); err != nil {
		t.Fatalf("applying the agent RBAC: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "-n", "default", "-f", rbac) })
	// The node is tainted against namespace default: the pods stay Pending,
	// and deleting one is held by a finalizer, so that it is being deleted (as
	// a pod is when its preStop hook runs) while the agent reads it.
	if out, err := suite.apply(`
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: lake-be, namespace: default}
spec:
  serviceName: lake-be
  replicas: 2
  ordinals: {start: 3}
  # Both pods at once: neither becomes Ready here.
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: lake-be}}
  template:
    metadata: {labels: {app: lake-be}}
    spec:
      containers: [{name: be, image: "apache/doris:be-2.1.7"}]
`); err != nil {
		t.Fatalf("creating the StatefulSet: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "statefulset", "lake-be") })
	for _, pod := range []string{"lake-be-3", "lake-be-4"} {
		eventually(t, time.Minute, func() string {
			out, err := suite.kubectl("patch", "pod", pod, "--type=merge", "-p", `{"metadata":{"finalizers":["doris-admission.io/e2e-hold"]}}`)
			if err != nil {
				return "the StatefulSet controller has not made pod " + pod + ": " + out
			}
			return ""
		})
		t.Cleanup(func() {
			suite.kubectl("patch", "pod", pod, "--type=json", `-p=[{"op":"remove","path":"/metadata/finalizers"}]`)
		})
	}
	if out, err := suite.kubectl("scale", "statefulset", "lake-be", "--replicas=1"); err != nil {
		t.Fatalf("scaling to 1: %v\n%s", err, out)
	}
	if out, err := suite.kubectl("delete", "pod", "lake-be-3", "--wait=false"); err != nil {
		t.Fatalf("deleting pod lake-be-3: %v\n%s", err, out)
	}
	for _, pod := range []string{"lake-be-3", "lake-be-4"} {
		eventually(t, time.Minute, func() string {
			if out, _ := suite.kubectl("get", "pod", pod, "-o", "jsonpath={.metadata.deletionTimestamp}"); out == "" {
				return "pod " + pod + " is not being deleted"
			}
			return ""
		})
	}

	fake, err := fakefe.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	fake.Backends = []fakefe.Backend{
		{ID: 1, Host: "10.0.1.10", HeartbeatPort: 9050, Alive: true, TabletNum: 300},
		{ID: 2, Host: "10.0.1.11", HeartbeatPort: 9050, Alive: true, TabletNum: 300},
	}
	kubeconfig := serviceAccountKubeconfig(t, "default", "default")
	// The BE's stop_be.sh, which the agent runs after deciding.
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "bin", "stop_be.sh"), []byte("#!/bin/sh\necho stopped\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	decommission := func(pod, ip string) string {
		cmd := exec.Command(agentBin, "be-decommission", "--home", home, "--kubeconfig", kubeconfig,
			"--namespace", "default", "--pod-name", pod, "--address", ip, "--fe-host", "127.0.0.1", "--fe-port", fmt.Sprint(fake.Port()),
			"--deadline", "30s", "--poll", "20ms", "--log-to-main=false")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("agent be-decommission for %s: %v\n%s", pod, err, out)
		}
		return string(out)
	}

	out := decommission("lake-be-3", "10.0.1.10")
	if !strings.Contains(out, "not decommissioning: pod lake-be-3 is ordinal 3, one StatefulSet lake-be keeps (ordinal 3)") || len(fake.StatementsMatching("DECOMMISSION")) != 0 {
		t.Errorf("a restart decommissioned the BE or did not say why not:\n%s", out)
	}
	out = decommission("lake-be-4", "10.0.1.11")
	if !strings.Contains(out, "is decommissioned: its tablets moved and Doris dropped it") {
		t.Errorf("the scale-down did not end with the BE gone:\n%s", out)
	}
	if _, backends := fake.Snapshot(); len(backends) != 1 || backends[0].Host != "10.0.1.10" {
		t.Errorf("backends after the scale-down: %+v", backends)
	}
	if out, err := suite.kubectl("scale", "statefulset", "lake-be", "--replicas=0"); err != nil {
		t.Fatalf("scaling to 0: %v\n%s", err, out)
	}
	out = decommission("lake-be-3", "10.0.1.10")
	if !strings.Contains(out, "is scaled to 0") || len(fake.StatementsMatching("DECOMMISSION")) != 1 {
		t.Errorf("a scale to 0 decommissioned the BE or did not say why not:\n%s", out)
	}
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates as the
// ServiceAccount namespace/name, as the token of a pod running as it would.
func serviceAccountKubeconfig(t *testing.T, namespace, name string) string {
	t.Helper()
	user, err := suite.env.AddUser(envtest.User{
		Name:   "system:serviceaccount:" + namespace + ":" + name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
