package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/doris-admission/doris-admission/internal/harness"
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
		addr, err := harness.FreeAddress("127.0.0.1")
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
		rules, _ := suite.kubectl("get", "mutatingwebhookconfiguration", config, "-o", "jsonpath={.webhooks[*].rules[*].resources}")
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

// TestCertificateRotationUnderLoad runs the server with certificates that
// live for seconds while kubectl applies go through it without pause: the
// serving certificate is renewed several times and the CA is replaced, and
// not one apply fails, with failurePolicy Fail.
func TestCertificateRotationUnderLoad(t *testing.T) {
	const namespace, config = "rotate-e2e", "rotate-e2e"
	if out, err := suite.kubectl("create", "namespace", namespace); err != nil {
		t.Fatalf("creating the namespace: %v\n%s", err, out)
	}
	addr, err := harness.FreeAddress("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := suite.apply(webhookConfigurations(config, addr)); err != nil {
		t.Fatalf("creating the webhook configurations: %v\n%s", err, out)
	}
	host, port, _ := strings.Cut(addr, ":")
	// The CA is due after 12 s, the serving certificate 6 s after each
	// renewal; the server checks every 1.4 s.
	server, err := startServerProcess(suite.serverBin, suite.workDir, []string{"POD_NAMESPACE=" + namespace},
		"--kubeconfig", suite.kubeconfig, "--host", host, "--port", port, "--cert-dir", t.TempDir(),
		"--manage-certificates", "--certificate-hosts", "127.0.0.1", "--webhook-configuration", config,
		"--ca-validity", "26s", "--certificate-validity", "20s", "--renew-before", "14s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(server.stop)
	t.Cleanup(func() { suite.kubectl("delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration", config) })
	eventually(t, 15*time.Second, func() string {
		rules, _ := suite.kubectl("get", "mutatingwebhookconfiguration", config, "-o", "jsonpath={.webhooks[*].rules[*].resources}")
		if !strings.Contains(rules, "statefulsets") {
			return "the server did not set its rules: " + rules
		}
		return ""
	})
	firstCA := servedIssuer(t, addr)
	t.Cleanup(func() { suite.kubectl("delete", "statefulset", "rotate-fe", "--ignore-not-found") })

	// Apply until the CA was replaced and a few more applies went through.
	served := map[string]bool{}
	var applies, afterSwitch int
	deadline := time.Now().Add(60 * time.Second)
	for afterSwitch < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("the CA was not replaced within a minute (%d applies, %d serving certificates seen)\n%s", applies, len(served), server.Log())
		}
		applies++
		out, err := suite.apply(plainFE("rotate-fe", "default", applies))
		if err != nil {
			t.Fatalf("apply %d failed during the rotation: %v\n%s\nserver log:\n%s", applies, err, out, server.Log())
		}
		issuer, serial := servedCertificate(t, addr)
		served[serial] = true
		if issuer != firstCA {
			afterSwitch++
		}
	}
	if len(served) < 3 {
		t.Errorf("saw %d serving certificates over %d applies, want renewals", len(served), applies)
	}
	answered, err := server.counter(t.Context(), "doris_admission_requests_total", map[string]string{"webhook": "mutate", "kind": "StatefulSet"})
	if err != nil || answered < float64(applies) {
		t.Errorf("the server answered %v StatefulSet requests (%v), want at least the %d applies", answered, err, applies)
	}
	families, err := server.metrics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range families["doris_admission_certificate_expiry_timestamp_seconds"].GetMetric() {
		if expiry := time.Unix(int64(m.GetGauge().GetValue()), 0); time.Until(expiry) <= 0 || time.Until(expiry) > 30*time.Second {
			t.Errorf("certificate expiry metric %v = %v, want the renewed certificate's expiry, seconds from now", m.GetLabel(), expiry)
		}
	}
	if n := len(families["doris_admission_certificate_expiry_timestamp_seconds"].GetMetric()); n != 2 {
		t.Errorf("the certificate expiry metric has %d series, want 2 (serving and ca)", n)
	}
	t.Logf("%d applies, %d serving certificates, CA replaced, no failure", applies, len(served))
}

// servedCertificate is the issuer and serial of the certificate served at addr.
func servedCertificate(t *testing.T, addr string) (issuer, serial string) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("connecting to the server: %v", err)
	}
	defer conn.Close()
	leaf := conn.ConnectionState().PeerCertificates[0]
	return string(leaf.AuthorityKeyId), leaf.SerialNumber.String()
}

func servedIssuer(t *testing.T, addr string) string {
	issuer, _ := servedCertificate(t, addr)
	return issuer
}
