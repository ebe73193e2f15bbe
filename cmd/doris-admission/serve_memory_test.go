package main

import (
	"math"
	"os"
	"runtime/debug"
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
