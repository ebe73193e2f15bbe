package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doris-admission/doris-admission/internal/harness"
)

// TestApplySeedFEGoesThroughTheWebhook applies the plain seed FE with kubectl
// and checks that the API server stored it and that our server patched the
// StatefulSet CREATE, as its metrics count.
func TestApplySeedFEGoesThroughTheWebhook(t *testing.T) {
	ctx := t.Context()
	created := map[string]string{"webhook": "mutate", "kind": "StatefulSet", "operation": "CREATE", "result": "patched"}
	before, err := suite.server.counter(ctx, "doris_admission_requests_total", created)
	if err != nil {
		t.Fatal(err)
	}

	seed := filepath.Join(repoRoot, "deploy", "examples", "seed-fe-plain.yaml")
	out, err := suite.kubectl("apply", "-f", seed)
	t.Cleanup(func() { suite.kubectl("delete", "-f", seed, "--ignore-not-found") })
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
	families, err := suite.server.metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"doris_admission_request_duration_seconds", "doris_admission_policy_evaluation_duration_seconds"} {
		if f, ok := families[name]; !ok || len(f.GetMetric()) == 0 || f.GetMetric()[0].GetHistogram().GetSampleCount() == 0 {
			t.Errorf("/metrics has no samples of %s", name)
		}
	}
}

// TestServeStopsGracefullyOnSIGTERM starts a second server, checks it serves,
// and checks that SIGTERM ends it cleanly with exit status 0.
func TestServeStopsGracefullyOnSIGTERM(t *testing.T) {
	addr, err := harness.FreeAddress("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	server, err := suite.startServer(port)
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Stop(30 * time.Second); err != nil {
		t.Fatalf("doris-admission did not stop cleanly on SIGTERM: %v\nserver log:\n%s", err, server.Log())
	}
	if !strings.Contains(server.Log(), "stopped after answering the requests in flight") {
		t.Errorf("the server log does not say it drained the requests in flight:\n%s", server.Log())
	}
}
