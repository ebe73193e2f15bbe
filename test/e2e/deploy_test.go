package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/doris-admission/doris-admission/internal/harness"
)

// TestServerRunsWithTheShippedRBAC starts a second server that authenticates
// as the doris-admission ServiceAccount, bound only by the shipped RBAC, and
// checks it loads the policies, fills its caches and keeps the webhook
// configurations without a single request being forbidden.
func TestServerRunsWithTheShippedRBAC(t *testing.T) {
	if out, err := suite.kubectl("create", "namespace", "doris-admission"); err != nil && !strings.Contains(out, "AlreadyExists") {
		t.Fatalf("creating the namespace: %v\n%s", err, out)
	}
	rbac := filepath.Join(repoRoot, "deploy", "kustomize", "base", "rbac.yaml")
	if out, err := suite.kubectl("apply", "-f", rbac); err != nil {
		t.Fatalf("applying the server's RBAC: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "-f", rbac) })
	addr, err := harness.FreeAddress("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	opts := suite.env.WebhookInstallOptions
	server, err := startServerProcess(suite.serverBin, suite.workDir, nil,
		"--kubeconfig", serviceAccountKubeconfig(t, "doris-admission", "doris-admission"),
		"--cert-dir", opts.LocalServingCertDir, "--host", opts.LocalServingHost, "--port", port)
	if err != nil {
		t.Fatalf("the server did not become ready with the shipped RBAC: %v", err)
	}
	t.Cleanup(server.stop)

	// Managing its certificate Secret too (not the suite's webhook
	// configurations, whose CA must stay envtest's).
	addr, err = harness.FreeAddress("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ = strings.Cut(addr, ":")
	certServer, err := startServerProcess(suite.serverBin, suite.workDir, []string{"POD_NAMESPACE=doris-admission"},
		"--kubeconfig", serviceAccountKubeconfig(t, "doris-admission", "doris-admission"), "--webhook-configuration=",
		"--manage-certificates", "--cert-dir", t.TempDir(), "--host", opts.LocalServingHost, "--port", port)
	if err != nil {
		t.Fatalf("the server could not manage its certificates with the shipped RBAC: %v", err)
	}
	t.Cleanup(certServer.stop)

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
		if !strings.Contains(server.Log(), `"loaded policies"`) || strings.Count(server.Log(), `"loaded policies"`) < 2 {
			return "the server did not reload the policies:\n" + server.Log()
		}
		return ""
	})
	for _, s := range []*serverProcess{server, certServer} {
		if strings.Contains(s.Log(), "forbidden") {
			t.Errorf("the server was refused something with the shipped RBAC:\n%s", s.Log())
		}
	}
	checkGrantsNoMore(t)
}

// checkGrantsNoMore lists, with kubectl auth can-i --list, what the
// ServiceAccount may do in its namespace and cluster-wide, and compares it
// with exactly what the server reads and writes.
func checkGrantsNoMore(t *testing.T) {
	t.Helper()
	out, err := suite.kubectl("auth", "can-i", "--list", "-n", "doris-admission", "--as", "system:serviceaccount:doris-admission:doris-admission")
	if err != nil {
		t.Fatalf("kubectl auth can-i --list: %v\n%s", err, out)
	}
	// Resources, Non-Resource URLs, Resource Names, Verbs.
	row := regexp.MustCompile(`^(\S+)\s+\[([^\]]*)\]\s+(\[[^\]]*\])\s+(\[[^\]]*\])$`)
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		m := row.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue // non-resource URLs every account may read
		}
		got[m[1]+" "+m[3]] = m[4]
	}
	want := map[string]string{
		// What every authenticated account may do.
		"selfsubjectreviews.authentication.k8s.io []":      "[create]",
		"selfsubjectaccessreviews.authorization.k8s.io []": "[create]",
		"selfsubjectrulesreviews.authorization.k8s.io []":  "[create]",
		"clustertrustbundles.certificates.k8s.io []":       "[get list watch]",
		// The server's.
		"mutatingpolicies.policies.doris-admission.io []":                                "[get list watch]",
		"validatingpolicies.policies.doris-admission.io []":                              "[get list watch]",
		"mutatingpolicies.policies.doris-admission.io/status []":                         "[update patch]",
		"validatingpolicies.policies.doris-admission.io/status []":                       "[update patch]",
		"mutatingwebhookconfigurations.admissionregistration.k8s.io []":                  "[list watch]",
		"validatingwebhookconfigurations.admissionregistration.k8s.io []":                "[list watch]",
		"mutatingwebhookconfigurations.admissionregistration.k8s.io [doris-admission]":   "[get update]",
		"validatingwebhookconfigurations.admissionregistration.k8s.io [doris-admission]": "[get update]",
		"namespaces []":                                      "[get list watch]",
		"services []":                                        "[get list watch create]",
		"configmaps []":                                      "[get list watch]",
		"statefulsets.apps []":                               "[list watch]",
		"policyreports.wgpolicyk8s.io []":                    "[get create update delete]",
		"clusterpolicyreports.wgpolicyk8s.io []":             "[get create update delete]",
		"secrets []":                                         "[create]",
		"secrets [doris-admission-tls]":                      "[get update]",
		"leases.coordination.k8s.io []":                      "[create]",
		"leases.coordination.k8s.io [doris-admission-audit]": "[get update]",
	}
	for key, verbs := range got {
		if want[key] != verbs {
			t.Errorf("the ServiceAccount may %s on %s; the server needs %q", verbs, key, want[key])
		}
	}
	for key, verbs := range want {
		if _, ok := got[key]; !ok {
			t.Errorf("the ServiceAccount may not %s on %s", verbs, key)
		}
	}
}

// TestKustomizeBaseIsAccepted renders deploy/kustomize/base with kubectl and
// applies it server-side: every object is accepted by the real API server.
// The webhook configurations go through a server-side dry run under another
// name, so the suite's own stay in place and do not mix in.
func TestKustomizeBaseIsAccepted(t *testing.T) {
	rendered, err := suite.kubectl("kustomize", filepath.Join(repoRoot, "deploy", "kustomize", "base"))
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, rendered)
	}
	var objects, webhooks []string
	for _, doc := range strings.Split(rendered, "\n---\n") {
		if strings.Contains(doc, "kind: MutatingWebhookConfiguration") || strings.Contains(doc, "kind: ValidatingWebhookConfiguration") {
			webhooks = append(webhooks, strings.Replace(doc, "  name: doris-admission\n", "  name: doris-admission-dry-run\n", 1))
		} else {
			objects = append(objects, doc)
		}
	}
	if len(objects) < 8 || len(webhooks) != 2 {
		t.Fatalf("rendered %d objects and %d webhook configurations:\n%s", len(objects), len(webhooks), rendered)
	}
	file := filepath.Join(t.TempDir(), "base.yaml")
	write := func(docs []string) string {
		if err := os.WriteFile(file, []byte(strings.Join(docs, "\n---\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}
	if out, err := suite.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager", "e2e", "-f", write(objects)); err != nil {
		t.Fatalf("server-side apply of the base: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		suite.kubectl("delete", "namespace", "doris-admission", "--wait=false")
		suite.kubectl("delete", "clusterrole,clusterrolebinding", "doris-admission")
	})
	if out, err := suite.kubectl("apply", "--server-side", "--dry-run=server", "--force-conflicts", "--field-manager", "e2e", "-f", write(webhooks)); err != nil {
		t.Fatalf("server-side dry run of the webhook configurations: %v\n%s", err, out)
	}
}
