package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServerRunsWithTheShippedRBAC starts a second server that authenticates
// as the doris-admission ServiceAccount, bound only by the shipped RBAC, and
// checks it loads the policies, fills its caches and keeps the webhook
// configurations without a single request being forbidden.
func TestServerRunsWithTheShippedRBAC(t *testing.T) {
	rbac := filepath.Join(repoRoot, "deploy", "kustomize", "base", "rbac.yaml")
	if out, err := suite.kubectl("apply", "-f", rbac); err != nil {
		t.Fatalf("applying the server's RBAC: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "-f", rbac) })
	addr, err := freeAddress()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	opts := suite.env.WebhookInstallOptions
	server, err := startServerProcess(suite.serverBin, suite.workDir,
		"--kubeconfig", serviceAccountKubeconfig(t, "doris-admission", "doris-admission"),
		"--cert-dir", opts.LocalServingCertDir, "--host", opts.LocalServingHost, "--port", port)
	if err != nil {
		t.Fatalf("the server did not become ready with the shipped RBAC: %v", err)
	}
	t.Cleanup(server.stop)

	// Work that exercises every read and write: a policy (load, status,
	// webhook rules), a Service (node port index) and a Doris StatefulSet.
	if out, err := suite.apply(`
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: e2e-rbac-typo}
spec:
  validationActions: [Warn]
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  validations: [{expression: "has(object.spec.replicas)"}]
`); err != nil {
		t.Fatalf("applying a policy: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "validatingpolicy", "e2e-rbac-typo") })
	eventually(t, 15*time.Second, func() string {
		if !strings.Contains(server.log(), `"loaded policies"`) || strings.Count(server.log(), `"loaded policies"`) < 2 {
			return "the server did not reload the policies:\n" + server.log()
		}
		return ""
	})
	if strings.Contains(server.log(), "forbidden") {
		t.Errorf("the server was refused something with the shipped RBAC:\n%s", server.log())
	}
}
