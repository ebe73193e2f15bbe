package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestServerManagesItsCertificates starts two replicas at once with no
// certificates: they agree on one CA and serving certificate in a Secret,
// inject the CA into their webhook configurations, and the API server then
// calls them over TLS it trusts.
func TestServerManagesItsCertificates(t *testing.T) {
	const namespace, config = "certs-e2e", "certs-e2e"
	if out, err := suite.kubectl("create", "namespace", namespace); err != nil {
		t.Fatalf("creating the namespace: %v\n%s", err, out)
	}
	addresses := make([]string, 2)
	for i := range addresses {
		addr, err := freeAddress()
		if err != nil {
			t.Fatal(err)
		}
		addresses[i] = addr
	}
	if out, err := suite.apply(webhookConfigurations(config, addresses[0])); err != nil {
		t.Fatalf("creating the webhook configurations: %v\n%s", err, out)
	}
	servers := make([]*serverProcess, 2)
	dirs := []string{t.TempDir(), t.TempDir()}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			host, port, _ := strings.Cut(addresses[i], ":")
			servers[i], errs[i] = startServerProcess(suite.serverBin, suite.workDir, []string{"POD_NAMESPACE=" + namespace},
				"--kubeconfig", suite.kubeconfig, "--host", host, "--port", port, "--cert-dir", dirs[i],
				"--manage-certificates", "--certificate-hosts", "127.0.0.1", "--webhook-configuration", config)
		}()
	}
	wg.Wait()
	for i, s := range servers {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		t.Cleanup(s.stop)
	}
	// Cleanups run last-in first-out: the configurations go before the servers stop.
	t.Cleanup(func() { suite.kubectl("delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration", config) })

	ca, err := suite.kubectl("get", "secret", "-n", namespace, "doris-admission-tls", "-o", "jsonpath={.data.ca\\.crt}")
	if err != nil || ca == "" {
		t.Fatalf("no CA in the Secret: %v %s", err, ca)
	}
	for _, kind := range []string{"mutatingwebhookconfiguration", "validatingwebhookconfiguration"} {
		eventually(t, 15*time.Second, func() string {
			bundle, _ := suite.kubectl("get", kind, config, "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}")
			if bundle != ca {
				return kind + " does not have the Secret's CA as its caBundle"
			}
			return ""
		})
	}
	served := [][]byte{}
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, "tls.crt"))
		if err != nil {
			t.Fatal(err)
		}
		served = append(served, data)
	}
	secretCert, _ := suite.kubectl("get", "secret", "-n", namespace, "doris-admission-tls", "-o", "jsonpath={.data.tls\\.crt}")
	if decoded, _ := base64.StdEncoding.DecodeString(secretCert); !bytes.Equal(served[0], served[1]) || !bytes.Equal(served[0], decoded) {
		t.Errorf("the replicas serve different certificates, or not the Secret's")
	}

	// A Doris StatefulSet is now sent to the first replica too; the API
	// server must trust its certificate for the apply to pass.
	eventually(t, 15*time.Second, func() string {
		rules, _ := suite.kubectl("get", "mutatingwebhookconfiguration", config, "-o", "jsonpath={.webhooks[0].rules[*].resources}")
		if !strings.Contains(rules, "statefulsets") {
			return "the replica did not set its rules: " + rules
		}
		return ""
	})
	created := map[string]string{"webhook": "mutate", "kind": "StatefulSet", "operation": "CREATE", "result": "patched"}
	// Not in the replicas' own namespace: the webhooks never see that one.
	out, err := suite.apply(fmt.Sprintf(`
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: tls-fe, namespace: %s}
spec:
  serviceName: tls-fe
  selector: {matchLabels: {app: tls-fe}}
  template:
    metadata: {labels: {app: tls-fe}}
    spec:
      containers: [{name: fe, image: "apache/doris:fe-2.1.7"}]
`, "default"))
	t.Cleanup(func() { suite.kubectl("delete", "statefulset", "tls-fe", "--ignore-not-found") })
	if err != nil {
		t.Fatalf("the API server could not call the replica with the injected CA: %v\n%s", err, out)
	}
	if n, err := servers[0].counter(t.Context(), "doris_admission_requests_total", created); err != nil || n != 1 {
		t.Errorf("the replica answered %v StatefulSet creates (%v), want 1", n, err)
	}
}

// webhookConfigurations are both webhook configurations named name, calling
// the server at address, with no caBundle and no rules yet.
func webhookConfigurations(name, address string) string {
	hook := func(kind, path string) string {
		return fmt.Sprintf(`
apiVersion: admissionregistration.k8s.io/v1
kind: %s
metadata: {name: %s}
webhooks:
  - name: %s.certs-e2e.doris-admission.io
    admissionReviewVersions: ["v1"]
    sideEffects: None
    failurePolicy: Fail
    timeoutSeconds: 3
    clientConfig: {url: "https://%s%s"}
    rules: []
`, kind, name, strings.TrimPrefix(path, "/"), address, path)
	}
	return hook("MutatingWebhookConfiguration", "/mutate") + "---" + hook("ValidatingWebhookConfiguration", "/validate")
}
