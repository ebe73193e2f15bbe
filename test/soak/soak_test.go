// Package soak runs the webhook server under a steady load on loopback for
// a set time and checks that no request fails and memory stays flat. `make
// test` runs it for a few seconds; `make soak` for minutes.
package soak

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/doris-admission/doris-admission/certs"
	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/source"
	"github.com/doris-admission/doris-admission/webhook"
)

// Settings: SOAK_DURATION (default 5s) and SOAK_RATE, requests per second
// (default 200).
func settings(t *testing.T) (time.Duration, int) {
	duration, rate := 5*time.Second, 200
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SOAK_DURATION=%q: %v", v, err)
		}
		duration = d
	}
	if v := os.Getenv("SOAK_RATE"); v != "" {
		if _, err := fmt.Sscan(v, &rate); err != nil || rate < 1 {
			t.Fatalf("SOAK_RATE=%q: want a number of requests per second", v)
		}
	}
	return duration, rate
}

// request is one kind of admission request the load sends, and the verdict
// it must get.
type request struct {
	path    string
	kind    schema.GroupVersionKind
	object  string
	patched bool
}

var requests = []request{
	{webhook.MutatePath, schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, feStatefulSet, true},
	{webhook.MutatePath, schema.GroupVersionKind{Version: "v1", Kind: "Service"}, `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop"},"spec":{"type":"NodePort","ports":[{"port":80}]}}`, false},
	{webhook.ValidatePath, schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg","namespace":"shop"},"data":{"a":"b"}}`, false},
}

const feStatefulSet = `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"doris-fe","namespace":"shop"},
"spec":{"serviceName":"doris-fe","selector":{"matchLabels":{"app":"doris-fe"}},"template":{"metadata":{"labels":{"app":"doris-fe"}},
"spec":{"containers":[{"name":"fe","image":"apache/doris:fe-2.1.7","ports":[{"containerPort":9030,"name":"query-port"}]}]}}}}`

// TestSoak serves the built-in policies over HTTPS on loopback and sends
// requests at a fixed rate for the set time.
func TestSoak(t *testing.T) {
	duration, rate := settings(t)
	addr, client := startServer(t)
	bodies := make([][]byte, len(requests))
	for i, r := range requests {
		bodies[i] = reviewBody(t, r)
	}

	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	fail := func(format string, args ...any) {
		failed.Add(1)
		firstFailure.CompareAndSwap(nil, fmt.Sprintf(format, args...))
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	samples := sampleHeap(ctx, duration/10)
	ticks := time.NewTicker(time.Second / time.Duration(rate))
	defer ticks.Stop()
	var wg sync.WaitGroup
	inFlight := make(chan struct{}, 64)
loop:
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			break loop
		case <-ticks.C:
		}
		inFlight <- struct{}{}
		wg.Add(1)
		go func(r request, body []byte) {
			defer func() { <-inFlight; wg.Done() }()
			sent.Add(1)
			if err := send(client, addr, r, body); err != nil {
				fail("%s %s: %v", r.path, r.kind.Kind, err)
			}
		}(requests[i%len(requests)], bodies[i%len(requests)])
	}
	wg.Wait()
	heap := <-samples
	first, last := heap[0], heap[len(heap)-1]
	t.Logf("soak: %s at %d req/s: %d requests, %d errors; heap in use after GC: %.1f MiB at the first sample, %.1f MiB at the last (%d samples)",
		duration, rate, sent.Load(), failed.Load(), mib(first), mib(last), len(heap))
	if failed.Load() > 0 {
		t.Errorf("%d of %d requests failed; the first: %v", failed.Load(), sent.Load(), firstFailure.Load())
	}
	if sent.Load() == 0 {
		t.Fatal("no request was sent")
	}
	// Flat: the last sample within a quarter (and 8 MiB of slack) of the
	// first, taken once the server had warmed up.
	if last > first+first/4+8<<20 {
		t.Errorf("memory grew from %.1f MiB to %.1f MiB over the run", mib(first), mib(last))
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// sampleHeap samples the live heap every interval until ctx ends, then
// sends the samples; the first is taken after one interval of warm-up.
func sampleHeap(ctx context.Context, interval time.Duration) <-chan []uint64 {
	out := make(chan []uint64, 1)
	go func() {
		var samples []uint64
		take := func() {
			var m runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m)
			samples = append(samples, m.HeapInuse)
		}
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				take()
				out <- samples
				return
			case <-ticker.C:
				take()
			}
		}
	}()
	return out
}

// send posts one review and checks the answer is a review with the verdict r wants.
func send(client *http.Client, addr string, r request, body []byte) error {
	resp, err := client.Post("https://"+addr+r.path, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, data)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &review); err != nil || review.Response == nil {
		return fmt.Errorf("not an AdmissionReview: %s", data)
	}
	if !review.Response.Allowed || (len(review.Response.Patch) > 0) != r.patched {
		return fmt.Errorf("allowed %v with a patch of %d bytes; want allowed, patched %v: %v", review.Response.Allowed, len(review.Response.Patch), r.patched, review.Response.Result)
	}
	return nil
}

func reviewBody(t *testing.T, r request) []byte {
	t.Helper()
	resource := map[string]string{"StatefulSet": "statefulsets", "Service": "services", "ConfigMap": "configmaps"}[r.kind.Kind]
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "soak", Kind: metav1.GroupVersionKind(r.kind), Operation: admissionv1.Create, Namespace: "shop",
			Resource: metav1.GroupVersionResource{Group: r.kind.Group, Version: r.kind.Version, Resource: resource},
			Object:   kruntime.RawExtension{Raw: []byte(r.object)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// startServer serves the built-in policies and a validating policy on
// ConfigMaps over HTTPS on a loopback port; it returns the address and a
// keep-alive client that trusts the server.
func startServer(t *testing.T) (string, *http.Client) {
	t.Helper()
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	configMaps, err := policies.ReadPolicies("testdata/configmaps.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.NewEngine(source.Offline(nil))
	for _, l := range eng.Load(append(builtins, configMaps...)) {
		if len(l.Problems) > 0 {
			t.Fatalf("%s does not compile: %v", l.Name(), l.Problems)
		}
	}
	bundle, err := certs.Generate(certs.Options{Service: "soak", Namespace: "soak", Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"tls.crt": bundle.Serving.CertPEM, "tls.key": bundle.Serving.KeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	server := webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: port, CertDir: dir}, eng)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- server.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("the server stopped with %v", err)
		}
	})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(bundle.CA.CertPEM)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots}, MaxIdleConnsPerHost: 64,
	}}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for server.StartedChecker()(nil) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the webhook server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, client
}
