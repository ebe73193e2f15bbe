package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	uzap "go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// logs is where what this package and controller-runtime log goes, as
// `serve` logs it (zap, JSON), while a test captures it.
var logs = &capturedLog{level: uzap.NewAtomicLevelAt(zapcore.FatalLevel)}

func init() {
	// The logger can be set once per process: it writes to logs, which
	// keeps nothing and formats nothing until a test captures.
	ctrllog.SetLogger(zap.New(zap.WriteTo(logs), zap.Level(logs.level)))
}

// capturedLog is a log destination a test can capture.
type capturedLog struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	level uzap.AtomicLevel
}

func (c *capturedLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

// capture records everything logged up to verbosity 4 until the test ends.
// At 5 (--zap-log-level=5), controller-runtime traces every response it
// writes, message included, as the API server receives it.
func (c *capturedLog) capture(t *testing.T) {
	c.mu.Lock()
	c.buf.Reset()
	c.mu.Unlock()
	c.level.SetLevel(zapcore.Level(-4))
	t.Cleanup(func() { c.level.SetLevel(zapcore.FatalLevel) })
}

func (c *capturedLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// TestTLSVersions: TLS 1.1 is refused, TLS 1.3 is negotiated whenever the
// client offers it, and TLS 1.2 only with an AEAD cipher suite.
func TestTLSVersions(t *testing.T) {
	ts, err := startServer(t, Options{}, testEngine(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	address := strings.TrimPrefix(ts.url, "https://")
	dial := func(config *tls.Config) (tls.ConnectionState, error) {
		config.RootCAs = ts.ca
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", address, config)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer conn.Close()
		return conn.ConnectionState(), nil
	}
	for _, old := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		if _, err := dial(&tls.Config{MinVersion: old, MaxVersion: old}); err == nil || !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("a %s client: error %v, want the handshake refused for its protocol version", tls.VersionName(old), err)
		}
	}
	state, err := dial(&tls.Config{MinVersion: tls.VersionTLS13})
	if err != nil || state.Version != tls.VersionTLS13 {
		t.Errorf("a TLS 1.3 client: %s, %v; want TLS 1.3", tls.VersionName(state.Version), err)
	}
	state, err = dial(&tls.Config{MinVersion: tls.VersionTLS12})
	if err != nil || state.Version != tls.VersionTLS13 {
		t.Errorf("a client offering TLS 1.2 and 1.3: %s, %v; want TLS 1.3", tls.VersionName(state.Version), err)
	}
	state, err = dial(&tls.Config{MaxVersion: tls.VersionTLS12})
	if err != nil || state.Version != tls.VersionTLS12 || !strings.Contains(tls.CipherSuiteName(state.CipherSuite), "GCM") && !strings.Contains(tls.CipherSuiteName(state.CipherSuite), "CHACHA20") {
		t.Errorf("a TLS 1.2 client: %s %s, %v; want TLS 1.2 with an AEAD suite", tls.VersionName(state.Version), tls.CipherSuiteName(state.CipherSuite), err)
	}
	for _, weak := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256} {
		if _, err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{weak}}); err == nil {
			t.Errorf("a TLS 1.2 client offering only %s was accepted", tls.CipherSuiteName(weak))
		}
	}
	// The admission endpoints answer over the negotiated connection.
	status, _, answer := ts.post(t, ValidatePath, "application/json", bytes.NewReader(reviewOf("ConfigMap", "CREATE", `{"apiVersion":"v1","kind":"ConfigMap"}`, "")))
	if status != http.StatusOK || !strings.Contains(string(answer), `"allowed":true`) {
		t.Errorf("HTTP %d: %s", status, answer)
	}
}

// testCA is a CA that can sign client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// client signs a client certificate for name.
func (ca *testCA) client(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestClientCA: with a client CA, a client with a certificate another CA
// signed is refused in the handshake, one without a certificate gets HTTP
// 401, and one the client CA signed is answered.
func TestClientCA(t *testing.T) {
	apiServers, strangers := newTestCA(t, "kube-apiserver-client-ca"), newTestCA(t, "someone-else")
	file := filepath.Join(t.TempDir(), "client-ca.crt")
	if err := os.WriteFile(file, apiServers.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	ts, err := startServer(t, Options{ClientCA: file}, testEngine(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	body := reviewOf("ConfigMap", "CREATE", `{"apiVersion":"v1","kind":"ConfigMap"}`, "")
	post := func(certificates []tls.Certificate, maxVersion uint16) (int, error) {
		// The certificate is sent whatever CAs the server names, as a
		// client that does not look would.
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: ts.ca, MinVersion: tls.VersionTLS12, MaxVersion: maxVersion,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if len(certificates) == 0 {
					return &tls.Certificate{}, nil
				}
				return &certificates[0], nil
			}}}}
		defer client.CloseIdleConnections()
		resp, err := client.Post(ts.url+ValidatePath, "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		if status, err := post(nil, version); err != nil || status != http.StatusUnauthorized {
			t.Errorf("%s without a client certificate: HTTP %d, %v; want 401", tls.VersionName(version), status, err)
		}
		if status, err := post([]tls.Certificate{strangers.client(t, "kube-apiserver")}, version); err == nil {
			t.Errorf("%s with a client certificate of another CA: HTTP %d, want the connection refused", tls.VersionName(version), status)
		}
		if status, err := post([]tls.Certificate{apiServers.client(t, "kube-apiserver")}, version); err != nil || status != http.StatusOK {
			t.Errorf("%s with the API server's client certificate: HTTP %d, %v; want 200", tls.VersionName(version), status, err)
		}
	}
	// The readiness check dials without a client certificate: the server
	// still counts as started.
	if err := ts.started(nil); err != nil {
		t.Errorf("readiness with a client CA: %v", err)
	}
}

// TestClientCAFileProblems: a client CA that cannot be read or holds no
// certificate stops the server from starting, with a message naming it.
func TestClientCAFileProblems(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not-pem.crt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ file, want string }{
		{filepath.Join(dir, "missing.crt"), "missing.crt: no such file"},
		{notPEM, notPEM + " holds no PEM certificate"},
	} {
		_, err := startServer(t, Options{ClientCA: tt.file}, testEngine(t, ""))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("client CA %s: error %v, want one that says %q", tt.file, err, tt.want)
		}
	}
}

// The credentials the requests of TestNoCredentialsInLogs carry; none may
// appear in the log, in any form.
const (
	secretValue = "s3cr3tPassw0rdValue7Q"
	bearerToken = "eyJhbGciOiJSUzI1NiIsImtpZCI6IkJlYXJlclRva2VuIn0"
)

// TestNoCredentialsInLogs runs requests that carry a Secret's values and a
// bearer token through both endpoints, with policies that refuse them and
// policies whose errors quote what they read, and checks that neither value
// appears in anything logged, up to verbosity 4.
func TestNoCredentialsInLogs(t *testing.T) {
	engine := testEngine(t, `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: no-secrets-here}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [secrets, configmaps]}]
  validations:
    - expression: "false"
      message: this namespace takes no Secrets or ConfigMaps
    - expression: "!has(object.data) || object.data.all(k, object.data[k].size() < 8)"
      messageExpression: "'data is too long in ' + object.metadata.name"
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: quotes-annotations}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{apiGroups: ["", apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [secrets, configmaps, statefulsets]}]
  validations:
    - expression: "!has(object.metadata.annotations) || !('example.com/token' in object.metadata.annotations) || ip(object.metadata.annotations['example.com/token']).family() == 4"
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: quotes-secret-data}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [secrets]}]
  validations:
    - expression: "!has(object.stringData) || object.stringData.all(k, ip(object.stringData[k]).family() == 4)"
    - expression: "!has(object.data) || object.data.all(k, ip(string(object.data[k])).family() == 4)"
    - expression: "!has(object.data) || object.data.all(k, object.data[k].size() < 8)"
      messageExpression: "'the password ' + string(object.data['password']) + ' is too long'"
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: quotes-configmap-data}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}]
  validations:
    - expression: "!has(object.data) || object.data.all(k, ip(object.data[k]).family() == 4)"
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: MutatingPolicy
metadata: {name: mutates-and-fails}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [secrets]}]
  mutations:
    - patchType: ApplyConfiguration
      applyConfiguration:
        expression: "Object{metadata: Object.metadata{labels: {'length': string(int(object.stringData['password']))}}}"
`)
	ts, err := startServer(t, Options{}, engine)
	if err != nil {
		t.Fatal(err)
	}
	logs.capture(t)
	encoded := base64.StdEncoding.EncodeToString([]byte(secretValue))
	secret := fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"shop",
	  "annotations":{"example.com/token":"Bearer %s","kubectl.kubernetes.io/last-applied-configuration":"{\"stringData\":{\"password\":\"%s\"}}"}},
	  "type":"Opaque","data":{"password":%q},"stringData":{"password":%q}}`, bearerToken, secretValue, encoded, secretValue)
	configMap := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"shop","annotations":{"example.com/token":"Bearer %s"}},"data":{"password":%q}}`, bearerToken, secretValue)
	statefulSet := feStatefulSet(fmt.Sprintf(`"annotations":{"example.com/token":"Bearer %s"}`, bearerToken))
	bodies := [][]byte{
		reviewOf("Secret", "CREATE", secret, ""),
		reviewOf("Secret", "UPDATE", secret, `"oldObject":`+secret),
		reviewOf("Secret", "DELETE", "", `"oldObject":`+secret),
		reviewOf("Secret", "CREATE", secret, `"dryRun":true`),
		reviewOf("ConfigMap", "CREATE", configMap, ""),
		reviewOf("StatefulSet", "CREATE", statefulSet, ""),
		// Refused before the policies: not a review the API server sends.
		reviewOf("Secret", "CREATE", secret, `"dryRun":"`+secretValue+`"`),
		reviewOf("Secret", "PATCH", secret, ""),
		[]byte(strings.Replace(string(reviewOf("Secret", "CREATE", secret, "")), "admission.k8s.io/v1", "admission.k8s.io/"+secretValue, 1)),
		[]byte(string(reviewOf("Secret", "CREATE", secret, ""))[:500]),
	}
	refused := 0
	for _, body := range bodies {
		for _, path := range []string{MutatePath, ValidatePath} {
			status, _, answer := ts.post(t, path, "application/json", bytes.NewReader(body))
			if status != http.StatusOK || !strings.Contains(string(answer), `"allowed":true`) {
				refused++
			}
		}
	}
	if refused < 10 {
		t.Errorf("only %d requests were refused: the test needs refusals, which are what the server logs", refused)
	}
	logged := logs.String()
	if !strings.Contains(logged, `"refused"`) {
		t.Fatalf("nothing was logged as refused; the log:\n%.2000s", logged)
	}
	for _, value := range []string{secretValue, encoded, bearerToken} {
		if i := strings.Index(logged, value); i >= 0 {
			t.Errorf("the log holds %q:\n%s", value, logged[max(0, i-600):min(len(logged), i+200)])
		}
	}
}

// hostilePolicies are policies on ConfigMaps written to stall the server:
// exponential comprehensions, a message that costs too much to build, and
// enough expensive validations to spend a request's whole CEL budget.
func hostilePolicies() string {
	list := "[1,2,3,4,5,6,7,8,9,10]"
	loop := fmt.Sprintf("%[1]s.all(a, %[1]s.all(b, %[1]s.all(c, %[1]s.all(d, %[1]s.all(e, %[1]s.all(f, a + b + c + d + e + f > 0))))))", list)
	header := `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: %s}
spec:
  failurePolicy: %s
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}]
  validations:
`
	var b strings.Builder
	fmt.Fprintf(&b, header, "loop-fail", "Fail")
	fmt.Fprintf(&b, "    - expression: %q\n", loop)
	b.WriteString("---")
	fmt.Fprintf(&b, header, "loop-ignore", "Ignore")
	fmt.Fprintf(&b, "    - expression: %q\n", loop)
	b.WriteString("---")
	fmt.Fprintf(&b, header, "huge-message", "Fail")
	message := "'" + strings.Repeat("x", 50) + "'"
	for _, v := range []string{"f", "e", "d", "c", "b", "a"} {
		message = fmt.Sprintf("%s.map(%s, %s).join('')", list, v, message)
	}
	fmt.Fprintf(&b, "    - expression: \"false\"\n      message: the static message\n      messageExpression: %q\n", message)
	b.WriteString("---")
	fmt.Fprintf(&b, header, "many-loops", "Fail")
	for range 12 {
		fmt.Fprintf(&b, "    - expression: %q\n", loop)
	}
	return b.String()
}

// TestHostilePoliciesDoNotStallOthers fires requests the hostile policies
// match, concurrently, with requests they do not match: every request is
// answered; the matched ones fail per each policy's failurePolicy, with the
// cost limits named; the others are answered as if the hostile policies
// were not there. Time is only a hang guard.
func TestHostilePoliciesDoNotStallOthers(t *testing.T) {
	ts, err := startServer(t, Options{}, testEngine(t, hostilePolicies()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	post := func(path string, body []byte) (*admissionv1.AdmissionResponse, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+path, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := ts.client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&review); err != nil || review.Response == nil {
			return nil, fmt.Errorf("HTTP %d: no AdmissionReview (%v)", resp.StatusCode, err)
		}
		return review.Response, nil
	}
	hostile := reviewOf("ConfigMap", "CREATE", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"shop"},"data":{"a":"b"}}`, "")
	plain := reviewOf("StatefulSet", "CREATE", feStatefulSet(""), "")
	type answer struct {
		hostile bool
		resp    *admissionv1.AdmissionResponse
		err     error
	}
	answers := make(chan answer)
	const each = 4
	for i := range 2 * each {
		go func() {
			if i%2 == 0 {
				resp, err := post(ValidatePath, hostile)
				answers <- answer{true, resp, err}
			} else {
				resp, err := post(MutatePath, plain)
				answers <- answer{false, resp, err}
			}
		}()
	}
	for range 2 * each {
		a := <-answers
		if a.err != nil {
			t.Errorf("hostile=%v: %v", a.hostile, a.err)
			continue
		}
		if !a.hostile {
			if !a.resp.Allowed || len(a.resp.Patch) == 0 {
				t.Errorf("a StatefulSet no hostile policy matches was not patched as usual: allowed=%v, %d bytes of patch, %v", a.resp.Allowed, len(a.resp.Patch), a.resp.Result)
			}
			continue
		}
		if a.resp.Allowed || a.resp.Result == nil {
			t.Errorf("a ConfigMap the hostile policies match was allowed: %+v", a.resp)
			continue
		}
		message := a.resp.Result.Message
		for _, want := range []string{
			"(policy loop-fail)",                       // Fail: the error denies
			"the static message (policy huge-message)", // the messageExpression over its limit falls back to the message
			"(policy many-loops)",
			"cost budget",
		} {
			if !strings.Contains(message, want) {
				t.Errorf("the ConfigMap's denial does not say %q: %s", want, message)
			}
		}
		if strings.Contains(message, "loop-ignore") {
			t.Errorf("loop-ignore has failurePolicy Ignore but is in the denial: %s", message)
		}
	}
}

// TestStrangersReserveNothing: with --client-ca, a review of a NodePort
// Service from a client without the API server's certificate makes the
// server hold nothing, while the same review from the API server holds the
// port for the Service (another Service asking for it is then refused).
func TestStrangersReserveNothing(t *testing.T) {
	apiServers, strangers := newTestCA(t, "kube-apiserver-client-ca"), newTestCA(t, "someone-else")
	file := filepath.Join(t.TempDir(), "client-ca.crt")
	if err := os.WriteFile(file, apiServers.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	engine := testEngine(t, "")
	ts, err := startServer(t, Options{ClientCA: file}, engine)
	if err != nil {
		t.Fatal(err)
	}
	service := func(name string) string {
		return `{"apiVersion":"v1","kind":"Service","metadata":{"name":"` + name + `","namespace":"shop"},"spec":{"type":"NodePort","ports":[{"name":"web","port":80,"nodePort":31555}]}}`
	}
	forge := func(certificate *tls.Certificate) {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ts.ca, MinVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if certificate == nil {
					return &tls.Certificate{}, nil
				}
				return certificate, nil
			}}}}
		defer client.CloseIdleConnections()
		if resp, err := client.Post(ts.url+MutatePath+"/fail", "application/json", bytes.NewReader(reviewOf("Service", "CREATE", service("forged"), ""))); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	taken := func() bool {
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON([]byte(service("real"))); err != nil {
			t.Fatal(err)
		}
		req, err := engine.RequestForObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		res, err := engine.Validate(context.Background(), req)
		return err != nil || len(res.Denied) > 0
	}
	forge(nil)
	stranger := strangers.client(t, "kube-apiserver")
	forge(&stranger)
	if taken() {
		t.Fatal("a review from a client without the API server's certificate reserved node port 31555")
	}
	apiServer := apiServers.client(t, "kube-apiserver")
	forge(&apiServer)
	if !taken() {
		t.Error("the API server's review did not reserve node port 31555: this test cannot tell")
	}
}
