package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/healthz"

	"github.com/doris-admission/doris-admission/certs"
	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/source"
)

// testEngine is an offline engine with the built-in policies and the
// policies of extra (YAML).
func testEngine(t testing.TB, extra string) *engine.Engine {
	t.Helper()
	loaded, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	if extra != "" {
		more, err := policies.ReadPolicies("-", strings.NewReader(extra))
		if err != nil {
			t.Fatal(err)
		}
		loaded = append(loaded, more...)
	}
	eng := engine.NewEngine(source.Offline(nil))
	for _, l := range eng.Load(loaded) {
		if len(l.Problems) > 0 {
			t.Fatalf("policy %s: %v", l.Name(), l.Problems)
		}
	}
	return eng
}

// testServer is NewServer serving HTTPS on a loopback port.
type testServer struct {
	// url is https://127.0.0.1:port.
	url string
	// ca signed the serving certificate.
	ca *x509.CertPool
	// client trusts ca and offers TLS 1.2 and 1.3, as the API server does.
	client *http.Client
	// started is the server's readiness check.
	started healthz.Checker
}

// startServer serves engine with NewServer(opts) on a free loopback port,
// with a fresh serving certificate, until the test ends. Start's error, if
// any, is returned before the server answers.
func startServer(t *testing.T, opts Options, eng *engine.Engine) (*testServer, error) {
	t.Helper()
	bundle, err := certs.Generate(certs.Options{Service: "doris-admission", Namespace: "test", Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	opts.CertDir = t.TempDir()
	if err := errors.Join(
		os.WriteFile(filepath.Join(opts.CertDir, "tls.crt"), bundle.Serving.CertPEM, 0o600),
		os.WriteFile(filepath.Join(opts.CertDir, "tls.key"), bundle.Serving.KeyPEM, 0o600),
	); err != nil {
		t.Fatal(err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port = "127.0.0.1", listener.Addr().(*net.TCPAddr).Port
	listener.Close()

	server := NewServer(opts, eng)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- server.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-stopped
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bundle.CA.CertPEM)
	ts := &testServer{
		started: server.StartedChecker(),
		url:     fmt.Sprintf("https://127.0.0.1:%d", opts.Port),
		ca:      pool,
		client: &http.Client{Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2: true,
		}},
	}
	// Wait until the server answers TLS; a hang guard, not a timing.
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-stopped:
			stopped <- err
			return nil, err
		default:
		}
		dialer := &net.Dialer{Timeout: time.Second}
		if conn, err := tls.DialWithDialer(dialer, "tcp", strings.TrimPrefix(ts.url, "https://"), &tls.Config{RootCAs: pool}); err == nil {
			conn.Close()
			return ts, nil
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not listen within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// post sends body to path with content type and returns the status, header
// and answer.
func (ts *testServer) post(t *testing.T, path, contentType string, body io.Reader) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: reading the answer: %v", path, err)
	}
	return resp.StatusCode, resp.Header, answer
}

// reviewOf is an AdmissionReview of operation on an object of kind, with
// the given raw object and extra request fields (JSON members, may be "").
func reviewOf(kind, operation, object, extra string) []byte {
	group, version, resource := "apps", "v1", strings.ToLower(kind)+"s"
	if kind != "StatefulSet" {
		group = ""
	}
	fields := fmt.Sprintf(`"uid":"uid-%s-%s","kind":{"group":%q,"version":%q,"kind":%q},"resource":{"group":%q,"version":%q,"resource":%q},"namespace":"shop","name":"x","operation":%q,"userInfo":{"username":"alice"}`,
		strings.ToLower(kind), strings.ToLower(operation), group, version, kind, group, version, resource, operation)
	if object != "" {
		fields += `,"object":` + object
	}
	if extra != "" {
		fields += "," + extra
	}
	return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{` + fields + `}}`)
}

// feStatefulSet is a Doris FE StatefulSet with extra metadata (JSON members,
// may be "").
func feStatefulSet(metadata string) string {
	if metadata != "" {
		metadata = "," + metadata
	}
	return `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"x","namespace":"shop"` + metadata + `},
	  "spec":{"replicas":1,"serviceName":"x","selector":{"matchLabels":{"app":"x"}},"template":{"metadata":{"labels":{"app":"x"}},
	  "spec":{"containers":[{"name":"fe","image":"apache/doris:fe-2.1.7"}]}}}}`
}

// nested is levels of {"a": ...} around 1.
func nested(levels int) string {
	return strings.Repeat(`{"a":`, levels) + "1" + strings.Repeat("}", levels)
}

// TestBadInput sends what an API server would never send, and some of what
// it would, through the HTTPS server, and checks each answer is a clear
// 4xx or an AdmissionReview that says what it decided, and that the big
// inputs leave no memory behind.
func TestBadInput(t *testing.T) {
	ts, err := startServer(t, Options{}, testEngine(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	const jsonType = "application/json"
	bigValue := strings.Repeat("x", 3<<20+512<<10) // 3.5 MiB: over the API server's object limit
	service := `{"apiVersion":"v1","kind":"Service","metadata":{"name":"x","namespace":"shop"},"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":30555}]}}`
	tests := []struct {
		name        string
		path        string
		contentType string
		body        func() io.Reader
		// status is the HTTP status; for 200, allowed and patched say what
		// the AdmissionReview decided.
		status          int
		allowed         bool
		patched         bool
		message         string // a part of the message (HTTP body, or the response's status message)
		big, unreadable bool
	}{
		{name: "malformed JSON", path: MutatePath, body: text(`{"apiVersion": "admission.k8s.io/v1", "kind": `),
			status: 400, message: "the body is not an AdmissionReview"},
		{name: "not JSON at all", path: ValidatePath, body: text(`apiVersion: admission.k8s.io/v1`),
			status: 400, message: "the body is not an AdmissionReview"},
		{name: "empty body", path: MutatePath, body: text(``),
			status: 400, message: "the body is not an AdmissionReview"},
		{name: "wrong apiVersion", path: MutatePath, body: text(strings.Replace(string(reviewOf("ConfigMap", "CREATE", `{}`, "")), "admission.k8s.io/v1", "admission.k8s.io/v1beta1", 1)),
			status: 400, message: `apiVersion "admission.k8s.io/v1beta1"`},
		{name: "wrong kind", path: ValidatePath, body: text(strings.Replace(string(reviewOf("ConfigMap", "CREATE", `{}`, "")), `"kind":"AdmissionReview"`, `"kind":"ConfigMap"`, 1)),
			status: 400, message: `kind "ConfigMap"`},
		{name: "missing request", path: MutatePath, body: text(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`),
			status: 400, message: "has no request"},
		{name: "request without uid", path: MutatePath, body: text(strings.Replace(string(reviewOf("ConfigMap", "CREATE", `{}`, "")), `"uid":"uid-configmap-create"`, `"uid":""`, 1)),
			status: 400, message: "lacks uid"},
		{name: "a field of the wrong type", path: MutatePath, body: text(string(reviewOf("ConfigMap", "CREATE", `{}`, `"dryRun":"yes"`))),
			status: 400, message: "dryRun"},
		{name: "unknown operation", path: ValidatePath, body: text(string(reviewOf("ConfigMap", "PATCH", `{}`, ""))),
			status: 400, message: `request.operation is "PATCH"`},
		{name: "CREATE without object", path: MutatePath, body: text(string(reviewOf("StatefulSet", "CREATE", "", ""))),
			status: 400, message: "request.object"},
		{name: "UPDATE with a null object", path: ValidatePath, body: text(string(reviewOf("StatefulSet", "UPDATE", "null", `"oldObject":`+feStatefulSet("")))),
			status: 400, message: "request.object"},
		{name: "object is not an object", path: MutatePath, body: text(string(reviewOf("StatefulSet", "CREATE", `"a string"`, ""))),
			status: 200, allowed: false, message: "decoding object"},
		{name: "DELETE", path: ValidatePath, body: text(string(reviewOf("StatefulSet", "DELETE", "", `"oldObject":`+feStatefulSet("")))),
			status: 200, allowed: true},
		{name: "DELETE on /mutate", path: MutatePath, body: text(string(reviewOf("StatefulSet", "DELETE", "", `"oldObject":`+feStatefulSet("")))),
			status: 200, allowed: true},
		{name: "CONNECT", path: ValidatePath, body: text(string(reviewOf("Pod", "CONNECT", `{"apiVersion":"v1","kind":"PodExecOptions","command":["sh"]}`, `"subResource":"exec"`))),
			status: 200, allowed: true},
		{name: "CONNECT on /mutate", path: MutatePath, body: text(string(reviewOf("Pod", "CONNECT", `{"apiVersion":"v1","kind":"PodExecOptions","command":["sh"]}`, `"subResource":"exec"`))),
			status: 200, allowed: true},
		{name: "status subresource", path: MutatePath, body: text(string(reviewOf("StatefulSet", "UPDATE", feStatefulSet(""), `"subResource":"status","oldObject":`+feStatefulSet("")))),
			status: 200, allowed: true},
		{name: "scale subresource", path: MutatePath, body: text(string(reviewOf("StatefulSet", "UPDATE", `{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"x","namespace":"shop"},"spec":{"replicas":3}}`, `"subResource":"scale"`))),
			status: 200, allowed: true},
		{name: "dry run", path: MutatePath, body: text(string(reviewOf("StatefulSet", "CREATE", feStatefulSet(""), `"dryRun":true`))),
			status: 200, allowed: true, patched: true},
		{name: "dry run of a Service", path: MutatePath, body: text(string(reviewOf("Service", "CREATE", service, `"dryRun":true`))),
			status: 200, allowed: true},
		// The dry run reserved nothing: the same node port is still free.
		{name: "the Service after its dry run", path: MutatePath, body: text(string(reviewOf("Service", "CREATE", service, ""))),
			status: 200, allowed: true},
		{name: "a plain FE StatefulSet", path: MutatePath, body: text(string(reviewOf("StatefulSet", "CREATE", feStatefulSet(""), ""))),
			status: 200, allowed: true, patched: true},
		{name: "invalid UTF-8", path: MutatePath, body: text(string(reviewOf("ConfigMap", "CREATE", `{"apiVersion":"v1","kind":"ConfigMap","data":{"a":"`+"\xff\xfe"+`"}}`, ""))),
			status: 400, message: "not valid UTF-8"},
		{name: "lone surrogate escape", path: MutatePath, body: text(string(reviewOf("ConfigMap", "CREATE", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":"\ud800"}}`, ""))),
			status: 200, allowed: true},
		{name: "wrong method", path: MutatePath, body: nil,
			status: 405, message: "method GET is not allowed"},
		{name: "wrong content type", path: MutatePath, contentType: "application/yaml", body: text(string(reviewOf("ConfigMap", "CREATE", `{}`, ""))),
			status: 415, message: `content type "application/yaml"`},
		{name: "unknown path", path: "/nope", body: text(string(reviewOf("ConfigMap", "CREATE", `{}`, ""))),
			status: 404, message: "404 page not found"},
		{name: "object over 3 MiB", path: MutatePath, big: true, body: text(string(reviewOf("ConfigMap", "CREATE", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":"`+bigValue+`"}}`, ""))),
			status: 200, allowed: true},
		{name: "StatefulSet over 3 MiB", path: MutatePath, big: true, body: text(string(reviewOf("StatefulSet", "CREATE", feStatefulSet(`"annotations":{"big":"`+bigValue+`"}`), ""))),
			status: 200, allowed: true, patched: true},
		{name: "huge annotation values", path: MutatePath, big: true, body: text(string(reviewOf("StatefulSet", "CREATE", feStatefulSet(`"annotations":{"doris.apache.org/conf-dir":"/`+strings.Repeat("c", 1<<20)+`","doris.apache.org/fe-service":"`+strings.Repeat("s", 1<<20)+`","doris.apache.org/host-mode":"`+strings.Repeat("h", 1<<20)+`"}`), ""))),
			status: 200, allowed: true, patched: true},
		{name: "huge annotation values, validated", path: ValidatePath, big: true, body: text(string(reviewOf("StatefulSet", "CREATE", feStatefulSet(`"annotations":{"doris.apache.org/conf-dir":"/`+strings.Repeat("c", 1<<20)+`","doris.apache.org/fe-service":"`+strings.Repeat("s", 1<<20)+`"}`), ""))),
			status: 200, allowed: true},
		{name: "a review over 7 MiB", path: MutatePath, big: true, body: text(string(reviewOf("ConfigMap", "UPDATE", `{"apiVersion":"v1","kind":"ConfigMap","data":{"a":"`+bigValue+`"}}`, `"oldObject":{"apiVersion":"v1","kind":"ConfigMap","data":{"a":"`+bigValue+`"}}`))),
			status: 413, message: "larger than"},
		{name: "a body of 64 MiB", path: ValidatePath, big: true, unreadable: true, body: func() io.Reader { return io.LimitReader(zeros{}, 64<<20) },
			status: 413, message: "larger than"},
		{name: "10,000 levels of nesting", path: MutatePath, big: true, body: text(string(reviewOf("ConfigMap", "CREATE", nested(10_000), ""))),
			status: 400, message: "exceeded max depth"},
		{name: "10,000 levels of arrays", path: ValidatePath, big: true, body: text(string(reviewOf("ConfigMap", "CREATE", strings.Repeat("[", 10_000)+strings.Repeat("]", 10_000), ""))),
			status: 400, message: "exceeded max depth"},
		{name: "a body of 10,000 levels of arrays", path: ValidatePath, big: true, body: text(strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000)),
			status: 400, message: "the body is not an AdmissionReview"},
		{name: "nesting just under the limit", path: MutatePath, big: true, body: text(string(reviewOf("StatefulSet", "CREATE", `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"x"},"spec":`+nested(9_990)+`}`, ""))),
			status: 200, allowed: true},
		{name: "nesting just under the limit, validated", path: ValidatePath, big: true, body: text(string(reviewOf("StatefulSet", "CREATE", `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"x","annotations":{"a":"b"}},"spec":{"template":`+nested(9_980)+`}}`, ""))),
			status: 200, allowed: true},
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var status int
			var header http.Header
			var answer []byte
			if tt.body == nil {
				resp, err := ts.client.Get(ts.url + tt.path)
				if err != nil {
					t.Fatal(err)
				}
				answer, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
				status, header = resp.StatusCode, resp.Header
			} else {
				contentType := tt.contentType
				if contentType == "" {
					contentType = jsonType
				}
				status, header, answer = ts.post(t, tt.path, contentType, tt.body())
			}
			if status != tt.status {
				t.Fatalf("HTTP %d, want %d: %.500s", status, tt.status, answer)
			}
			var message string
			if status == http.StatusOK {
				var sent []byte
				if !tt.unreadable {
					sent, _ = io.ReadAll(tt.body())
				}
				resp := checkAnswer(t, sent, status, header, answer)
				if resp.Result != nil {
					message = resp.Result.Message
				}
				if resp.Allowed != tt.allowed {
					t.Errorf("allowed = %v, want %v: %.500s", resp.Allowed, tt.allowed, answer)
				}
				if patched := len(resp.Patch) > 0; patched != tt.patched {
					t.Errorf("patched = %v, want %v: %.500s", patched, tt.patched, answer)
				}
			} else {
				if status != http.StatusNotFound {
					checkAnswer(t, nil, status, header, answer)
				}
				message = string(answer)
			}
			if !strings.Contains(message, tt.message) {
				t.Errorf("message %.500q does not say %q", message, tt.message)
			}
		})
	}
	ts.client.CloseIdleConnections()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap after GC: %d MiB before the table, %d MiB after (%+d KiB)", before.HeapAlloc>>20, after.HeapAlloc>>20, growth>>10)
	if growth > 64<<20 {
		t.Errorf("the heap grew by %d MiB across the bad inputs, over the 64 MiB bound", growth>>20)
	}
}

// text is a body of s.
func text(s string) func() io.Reader {
	return func() io.Reader { return strings.NewReader(s) }
}

// zeros reads as endless '0' bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}
