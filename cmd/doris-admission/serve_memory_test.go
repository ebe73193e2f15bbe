package main

import (
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/debug"
	"strings"
	"testing"
)

// TestLimitMemory: serve sets the Go memory limit to 90% of the container's,
// and leaves it to GOMEMLIMIT when that is set.
func TestLimitMemory(t *testing.T) {
	t.Cleanup(func() { debug.SetMemoryLimit(math.MaxInt64) })
	const containerLimit = 512 << 20
	provider := func() (uint64, error) { return containerLimit, nil }

	// Neither variable set, as in the chart's pod; t.Setenv restores them.
	for _, name := range []string{"GOMEMLIMIT", "AUTOMEMLIMIT"} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	limit, err := limitMemory(provider)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(containerLimit * 9 / 10)
	if limit != want || debug.SetMemoryLimit(-1) != want {
		t.Errorf("the Go memory limit is %d (reported %d), want %d: 90%% of the container's", debug.SetMemoryLimit(-1), limit, want)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "300MiB")
	debug.SetMemoryLimit(300 << 20) // what the runtime read from GOMEMLIMIT at start
	if limit, err := limitMemory(provider); err != nil || limit != 300<<20 {
		t.Errorf("with GOMEMLIMIT=300MiB the limit is %d (%v), want GOMEMLIMIT's", limit, err)
	}
}

// TestProfiling: --profiling serves the heap profile on the metrics server,
// and without it there is nothing at /debug/pprof/.
func TestProfiling(t *testing.T) {
	if handlers := profilingHandlers(false); handlers != nil {
		t.Errorf("without --profiling the metrics server gets %d profiling handlers, want none", len(handlers))
	}
	mux := http.NewServeMux()
	for path, h := range profilingHandlers(true) {
		mux.Handle(path, h)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/heap?debug=1", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "heap profile") {
		t.Errorf("GET /debug/pprof/heap answered %d:\n%.200s", rec.Code, rec.Body.String())
	}
}
