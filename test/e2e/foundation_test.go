package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// statefulSetWarning is a policy that matches StatefulSets, so the API
// server sends them to the webhook, and passes for the seed FE.
const statefulSetWarning = `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: e2e-statefulset-has-service}
spec:
  validationActions: [Warn]
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [statefulsets]}]
  validations:
    - expression: has(object.spec.serviceName)
      message: has no serviceName
`

// TestApplySeedFEGoesThroughTheWebhook applies the plain seed FE with kubectl
// and checks that the API server stored it and that our server admitted the
// StatefulSet CREATE.
func TestApplySeedFEGoesThroughTheWebhook(t *testing.T) {
	ctx := t.Context()
	if out, err := suite.apply(statefulSetWarning); err != nil {
		t.Fatalf("applying the policy: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "validatingpolicy", "e2e-statefulset-has-service") })
	waitForWebhookRule(t, "validatingwebhookconfiguration", "statefulsets", true)
	created := map[string]string{"webhook": "validate", "kind": "StatefulSet", "operation": "CREATE", "result": "allowed"}
	before, err := suite.server.counter(ctx, "doris_admission_requests_total", created)
	if err != nil {
		t.Fatal(err)
	}

	out, err := suite.kubectl("apply", "-f", filepath.Join(repoRoot, "deploy", "examples", "seed-fe-plain.yaml"))
	if err != nil {
		t.Fatalf("kubectl apply failed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "statefulset.apps/doris-fe created") {
		t.Fatalf("kubectl apply did not create the StatefulSet:\n%s", out)
	}
	if out, err := suite.kubectl("get", "statefulset", "doris-fe", "-o", "name"); err != nil {
		t.Fatalf("the API server did not store the StatefulSet: %v\n%s", err, out)
	}

	after, err := suite.server.counter(ctx, "doris_admission_requests_total", created)
	if err != nil {
		t.Fatal(err)
	}
	if after-before != 1 {
		t.Errorf("doris_admission_requests_total%v went from %v to %v, want exactly one more", created, before, after)
	}
}

// TestServeStopsGracefullyOnSIGTERM starts a second server, checks it serves,
// and checks that SIGTERM ends it cleanly with exit status 0.
func TestServeStopsGracefullyOnSIGTERM(t *testing.T) {
	addr, err := freeAddress()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	server, err := suite.startServer(port)
	if err != nil {
		t.Fatal(err)
	}
	if err := server.terminate(30 * time.Second); err != nil {
		t.Fatalf("doris-admission did not stop cleanly on SIGTERM: %v\nserver log:\n%s", err, server.log())
	}
	if !strings.Contains(server.log(), "stopped after answering the requests in flight") {
		t.Errorf("the server log does not say it drained the requests in flight:\n%s", server.log())
	}
}
