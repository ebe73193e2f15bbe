package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doris-admission/doris-admission/internal/harness"
)

// TestAuditReports: objects that exist before the server starts (made in
// kube-system, which the suite's webhook never sees) are scanned and
// reported; fixing one flips its result to pass; deleting a policy drops its
// results; the policy's status counts its violations.
func TestAuditReports(t *testing.T) {
	const namespace = "kube-system"
	if out, err := suite.kubectl("create", "namespace", "audit-e2e"); err != nil {
		t.Fatalf("creating the namespace: %v\n%s", err, out)
	}
	before := `
apiVersion: v1
kind: Service
metadata: {name: audit-debug, namespace: kube-system, labels: {audit-e2e: "yes"}}
spec:
  type: NodePort
  selector: {app: audit}
  ports: [{name: web, port: 8030, nodePort: 30777}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: audit-fe, namespace: kube-system}
spec:
  serviceName: audit-fe
  selector: {matchLabels: {app: audit-fe}}
  template:
    metadata: {labels: {app: audit-fe}}
    spec:
      containers: [{name: fe, image: "apache/doris:fe-2.1.7"}]
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: audit-e2e-owner}
spec:
  validationActions: [Warn]
  matchConstraints:
    objectSelector: {matchLabels: {audit-e2e: "yes"}}
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [services]}]
  validations:
    - expression: "has(object.metadata.labels) && 'owner' in object.metadata.labels"
      message: "has no owner label"
`
	if out, err := suite.apply(before); err != nil {
		t.Fatalf("creating the objects: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		suite.kubectl("delete", "service,statefulset", "-n", namespace, "audit-debug", "audit-fe", "--ignore-not-found")
		suite.kubectl("delete", "validatingpolicy", "audit-e2e-owner", "--ignore-not-found")
	})
	// The node ports allowed in kube-system: 31000-31099.
	if out, err := suite.kubectl("annotate", "namespace", namespace, "doris-admission.io/node-port-range=31000-31099", "--overwrite"); err != nil {
		t.Fatalf("annotating: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("annotate", "namespace", namespace, "doris-admission.io/node-port-range-") })

	addr, err := harness.FreeAddress("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(addr, ":")
	server, err := startServerProcess(suite.serverBin, suite.workDir, []string{"POD_NAMESPACE=audit-e2e"},
		"--kubeconfig", suite.kubeconfig, "--cert-dir", suite.env.WebhookInstallOptions.LocalServingCertDir,
		"--host", host, "--port", port, "--webhook-configuration=", "--exclude-namespaces=audit-e2e")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(server.stop)
	t.Cleanup(func() {
		suite.kubectl("delete", "policyreport", "-n", namespace, "doris-admission", "--ignore-not-found")
	})

	want := map[string]string{
		"Service/audit-debug node-ports":      "fail",
		"Service/audit-debug audit-e2e-owner": "warn",
		"StatefulSet/audit-fe doris-env":      "fail",
		"StatefulSet/audit-fe doris-hooks":    "fail",
		// A Doris 2.1.7 FE that exists in IP mode: the audit says how to move it.
		"StatefulSet/audit-fe doris-checks":       "warn",
		"Service/audit-debug doris-service-ports": "pass",
		"StatefulSet/audit-fe doris-grace-period": "fail",
	}
	waitForResults(t, server, namespace, want)
	eventually(t, 30*time.Second, func() string {
		if status, _ := suite.kubectl("get", "validatingpolicy", "audit-e2e-owner", "-o", "jsonpath={.status.audit.warnings}"); status != "1" {
			return fmt.Sprintf("audit-e2e-owner status.audit.warnings = %q, want 1", status)
		}
		return ""
	})

	// The command line sees the cluster the same way (outside kube-system,
	// which it leaves out as the webhooks do).
	if out, err := suite.apply(`{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "audit-live", "namespace": "default", "labels": {"audit-e2e": "yes"}}, "spec": {"ports": [{"port": 80}]}}`); err != nil {
		t.Fatalf("creating a Service: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "service", "-n", "default", "audit-live", "--ignore-not-found") })
	out, err := exec.Command(suite.serverBin, "audit", "--live", "--kubeconfig", suite.kubeconfig).CombinedOutput()
	if !strings.Contains(string(out), "warn    Service/default/audit-live") || strings.Contains(string(out), "kube-system") {
		t.Errorf("audit --live (%v) lacks the warning for Service default/audit-live, or lists kube-system:\n%s", err, out)
	}
	// Policies it cannot read or compile are reported, not dropped.
	local := filepath.Join(t.TempDir(), "local.yaml")
	if err := os.WriteFile(local, []byte(`apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: misspelt}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [services]}]
  validations: [{expression: "object.spec.prots.size() > 0"}]
---
kind: [not yaml
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(suite.serverBin, "audit", "--live", "--kubeconfig", suite.kubeconfig, "--policies", local).CombinedOutput()
	for _, want := range []string{"Warning: ValidatingPolicy misspelt", "undefined field 'prots'", "Error: " + local} {
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("audit --live --policies with a broken file (%v) does not say %q:\n%s", err, want, out)
		}
	}

	// Fix the Service: its node port into the namespace's range.
	if out, err := suite.kubectl("patch", "service", "-n", namespace, "audit-debug", "--type=json",
		`-p=[{"op":"replace","path":"/spec/ports/0/nodePort","value":31050}]`); err != nil {
		t.Fatalf("patching: %v\n%s", err, out)
	}
	want["Service/audit-debug node-ports"] = "pass"
	waitForResults(t, server, namespace, want)

	// Delete the user policy: its results go.
	if out, err := suite.kubectl("delete", "validatingpolicy", "audit-e2e-owner"); err != nil {
		t.Fatalf("deleting the policy: %v\n%s", err, out)
	}
	delete(want, "Service/audit-debug audit-e2e-owner")
	waitForResults(t, server, namespace, want)

}

// waitForResults waits until the namespace's report holds, for the
// resource/policy pairs given, exactly those results (other pairs may be
// there too, for objects other tests made), and no pair that was removed.
func waitForResults(t *testing.T, server *serverProcess, namespace string, want map[string]string) {
	t.Helper()
	eventually(t, 60*time.Second, func() string {
		out, err := suite.kubectl("get", "policyreport", "-n", namespace, "doris-admission", "-o", "json")
		if err != nil {
			return "no report yet: " + out
		}
		var report struct {
			Results []struct {
				Policy, Result string
				Resources      []struct{ Kind, Name string }
			}
			Summary map[string]int
		}
		if err := json.Unmarshal([]byte(out), &report); err != nil {
			return err.Error()
		}
		got := map[string]string{}
		for _, r := range report.Results {
			key := fmt.Sprintf("%s/%s %s", r.Resources[0].Kind, r.Resources[0].Name, r.Policy)
			if r.Result != "pass" || got[key] == "" {
				got[key] = r.Result
			}
		}
		for key, result := range want {
			if got[key] != result {
				return fmt.Sprintf("%s: %q, want %q (report: %v)", key, got[key], result, got)
			}
		}
		if _, ok := got["Service/audit-debug audit-e2e-owner"]; ok && want["Service/audit-debug audit-e2e-owner"] == "" {
			return "the deleted policy's results are still there"
		}
		return ""
	})
}
