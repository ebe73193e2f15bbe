package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// deployment is a Deployment manifest with the given name and replicas.
func deployment(name string, replicas int) string {
	return fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: %s, namespace: default}
spec:
  replicas: %d
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec:
      containers: [{name: app, image: nginx}]
`, name, replicas, name, name)
}

// TestUserPoliciesAreEnforced applies the example policies with kubectl and
// checks that Deployments are labelled, denied and warned as they say, and
// that deleting a policy stops its enforcement without a restart.
func TestUserPoliciesAreEnforced(t *testing.T) {
	examples := filepath.Join(repoRoot, "deploy", "examples", "policies")
	if out, err := suite.kubectl("apply", "-f", examples); err != nil {
		t.Fatalf("applying the example policies: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "-f", examples, "--ignore-not-found") })
	waitForWebhookRule(t, "mutatingwebhookconfiguration", "deployments", true)
	waitForWebhookRule(t, "validatingwebhookconfiguration", "deployments", true)

	out, err := suite.apply(deployment("too-big", 7))
	if err == nil {
		t.Fatalf("a Deployment with 7 replicas was admitted:\n%s", out)
	}
	if !strings.Contains(out, "spec.replicas: asks for 7 replicas; at most 5 are allowed (policy max-replicas)") {
		t.Errorf("the denial does not give the policy's message:\n%s", out)
	}

	out, err = suite.apply(deployment("small", 2))
	if err != nil {
		t.Fatalf("a Deployment with 2 replicas was denied: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Warning: metadata.labels: has no owner label; add one so people know whom to ask (policy owner-label)") {
		t.Errorf("kubectl did not print the Warn policy's warning:\n%s", out)
	}
	label, err := suite.kubectl("get", "deployment", "small", "-o", "jsonpath={.metadata.labels.team}")
	if err != nil || label != "platform" {
		t.Errorf("the stored Deployment has team label %q (%v), want platform", label, err)
	}

	if out, err := suite.kubectl("delete", "validatingpolicy", "max-replicas"); err != nil {
		t.Fatalf("deleting the policy: %v\n%s", err, out)
	}
	eventually(t, 15*time.Second, func() string {
		out, err := suite.apply(deployment("too-big", 7))
		if err != nil {
			return "still denied after the policy was deleted: " + out
		}
		return ""
	})
}

// TestBrokenPoliciesAreRejectedAtTheDoor applies policies whose CEL does not
// compile or names a field that does not exist.
func TestBrokenPoliciesAreRejectedAtTheDoor(t *testing.T) {
	tests := []struct {
		name, expression string
		want             []string
	}{
		{"syntax", "object.spec.replicas >", []string{"spec.validations[0].expression", "at 1:23: Syntax error", "expression: object.spec.replicas >"}},
		{"typo", "object.spec.replica > 5", []string{"spec.validations[0].expression", "at 1:12: undefined field 'replica'", "expression: object.spec.replica > 5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := suite.apply(fmt.Sprintf(`
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: broken-%s}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  validations: [{expression: %q}]
`, tt.name, tt.expression))
			if err == nil {
				suite.kubectl("delete", "validatingpolicy", "broken-"+tt.name)
				t.Fatalf("the broken policy was admitted:\n%s", out)
			}
			for _, want := range append(tt.want, "broken-"+tt.name) {
				if !strings.Contains(out, want) {
					t.Errorf("the rejection lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestRuntimeCostLimit applies a policy whose expression exceeds the cost
// budget when it runs: with failurePolicy Fail the request is denied with a
// message naming the policy and the expression, and the server keeps serving.
func TestRuntimeCostLimit(t *testing.T) {
	list := "[" + strings.Repeat("1,", 99) + "1]"
	expensive := list + ".all(a, " + list + ".all(b, " + list + ".all(c, a + b + c > 0)))"
	if out, err := suite.apply(fmt.Sprintf(`
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: expensive}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}]
  validations: [{expression: %q}]
`, expensive)); err != nil {
		t.Fatalf("applying the policy: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "validatingpolicy", "expensive") })
	waitForWebhookRule(t, "validatingwebhookconfiguration", "configmaps", true)

	out, err := suite.kubectl("create", "configmap", "costly")
	if err == nil {
		t.Fatalf("the ConfigMap was admitted although the policy cannot be evaluated:\n%s", out)
	}
	for _, want := range []string{"policy expensive", "could not be evaluated", "cost"} {
		if !strings.Contains(out, want) {
			t.Errorf("the denial lacks %q:\n%s", want, out)
		}
	}
	if out, err := suite.kubectl("get", "--raw", "/readyz"); err != nil {
		t.Fatalf("the API server is not ready: %v\n%s", err, out)
	}
	if err := suite.server.WaitReady(context.Background(), 5*time.Second); err != nil {
		t.Errorf("the server is not ready after the costly request: %v", err)
	}
}

// TestMalformedAdmissionReviews posts bodies no API server would send to the
// webhook's HTTPS endpoints: each gets HTTP 400 with a message, and the
// server keeps serving.
func TestMalformedAdmissionReviews(t *testing.T) {
	opts := suite.env.WebhookInstallOptions
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(opts.LocalServingCAData)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, body := range []string{"", "{", "[]", `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}`, "\xff\xfe"} {
		for _, path := range []string{"/mutate", "/validate"} {
			url := fmt.Sprintf("https://%s:%d%s", opts.LocalServingHost, opts.LocalServingPort, path)
			resp, err := client.Post(url, "application/json", bytes.NewReader([]byte(body)))
			if err != nil {
				t.Fatalf("POST %s %q: %v", path, body, err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || len(bytes.TrimSpace(data)) == 0 {
				t.Errorf("POST %s %q: HTTP %d %q, want 400 with a message", path, body, resp.StatusCode, data)
			}
		}
	}
	if err := suite.server.WaitReady(context.Background(), 5*time.Second); err != nil {
		t.Errorf("the server is not ready after the malformed requests: %v", err)
	}
}

// TestNodePortInventoryInTheCluster applies a user policy that reads the
// node port inventory and checks it sees a Service created before it.
func TestNodePortInventoryInTheCluster(t *testing.T) {
	if out, err := suite.apply(`
apiVersion: v1
kind: Service
metadata: {name: holder, namespace: default}
spec:
  type: NodePort
  selector: {app: holder}
  ports: [{name: web, port: 80, nodePort: 30777}]
`); err != nil {
		t.Fatalf("creating the Service: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "service", "holder") })
	if out, err := suite.apply(`
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: e2e-node-port-owner}
spec:
  validationActions: [Warn]
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}]
  validations:
    - expression: "size(inventory.nodePortOwners(30777)) == 0"
      messageExpression: "'30777 is held by ' + inventory.nodePortOwners(30777).map(o, o.namespace + '/' + o.name + ' port ' + o.port).join(', ')"
`); err != nil {
		t.Fatalf("applying the policy: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "validatingpolicy", "e2e-node-port-owner") })
	waitForWebhookRule(t, "validatingwebhookconfiguration", "configmaps", true)
	eventually(t, 15*time.Second, func() string {
		out, err := suite.kubectl("create", "configmap", fmt.Sprintf("probe-%d", time.Now().UnixNano()))
		if err != nil || !strings.Contains(out, "30777 is held by default/holder port web") {
			return fmt.Sprintf("no warning naming the owner (%v):\n%s", err, out)
		}
		return ""
	})
}

// TestDeletingADorisServiceIsDenied: a ValidatingPolicy on DELETE reaches
// the server, with the object being deleted as oldObject, and kubectl
// delete is refused with its message.
func TestDeletingADorisServiceIsDenied(t *testing.T) {
	if out, err := suite.apply(`
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: keep-doris-services}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [DELETE], resources: [services]}]
  validations:
    - expression: "!('doris.apache.org/role' in oldObject.metadata.?labels.orValue({}))"
      message: Doris Services are kept; remove the label doris.apache.org/role first
---
apiVersion: v1
kind: Service
metadata: {name: keep-me, namespace: default, labels: {doris.apache.org/role: fe}}
spec: {ports: [{port: 9030}]}
`); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() {
		suite.kubectl("delete", "validatingpolicy", "keep-doris-services", "--ignore-not-found")
		suite.kubectl("delete", "service", "-n", "default", "keep-me", "--ignore-not-found")
	})
	eventually(t, 30*time.Second, func() string {
		ops, _ := suite.kubectl("get", "validatingwebhookconfiguration", "doris-admission", "-o", "jsonpath={.webhooks[*].rules[*].operations}")
		return map[bool]string{false: "the server has not sent DELETE to its webhooks yet: " + ops}[strings.Contains(ops, "DELETE")]
	})
	out, err := suite.kubectl("delete", "service", "-n", "default", "keep-me")
	if err == nil || !strings.Contains(out, "Doris Services are kept; remove the label doris.apache.org/role first (policy keep-doris-services)") {
		t.Errorf("kubectl delete of a Doris Service was not refused with the policy's message (%v):\n%s", err, out)
	}
	if out, err := suite.kubectl("label", "service", "-n", "default", "keep-me", "doris.apache.org/role-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := suite.kubectl("delete", "service", "-n", "default", "keep-me"); err != nil {
		t.Errorf("without the label the Service must go: %v\n%s", err, out)
	}
}
