package bench

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRunPrintsEveryRow runs the whole harness on tiny numbers, so it keeps
// working: every row is there, with a value, and the table prints. It
// asserts the table's structure only, never a time.
func TestRunPrintsEveryRow(t *testing.T) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test`, or set it to the folder test/controlplane/build.sh prints")
	}
	opts := Options{
		Assets: assets,
		Rate:   200, RateDuration: 300 * time.Millisecond, MaxDuration: 300 * time.Millisecond, Workers: 2, Rounds: 1,
		Services: 100,
		Creates:  4, CreateRounds: 1,
		PodCreates: 6, PodRounds: 1, PodClients: []int{2},
		MemoryPolicies: 12, MemoryServices: 100,
		AuditObjects: 30,
	}
	if testing.Verbose() {
		opts.Progress = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	table, err := Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range table.Rows {
		ids = append(ids, r.ID)
		if r.Ours == "" || r.Section == "" || r.Scenario == "" || r.Measure == "" {
			t.Errorf("row %s is incomplete: %+v", r.ID, r)
		}
	}
	want := []string{
		"serving/a/p99", "serving/a/max", "serving/b/p99", "serving/b/max",
		"serving/c-mutate/p99", "serving/c-mutate/max", "serving/c-validate/p99", "serving/c-validate/max",
		"apiserver/none", "apiserver/webhook", "apiserver/native",
		"pods/2/none", "pods/2/webhook", "pods/2/native", "pods/2/vs-native",
		"memory/policies", "memory/index", "memory/per-service", "memory/server",
		"audit/scan",
	}
	if !slices.Equal(ids, want) {
		t.Errorf("rows %q, want %q", ids, want)
	}
	for _, r := range table.Rows {
		if (strings.HasPrefix(r.ID, "serving/") || strings.HasSuffix(r.ID, "/webhook") && strings.HasPrefix(r.ID, "pods/")) && (r.Baseline == "" || r.Ratio == "" || r.Target == "" || (r.Met != "yes" && r.Met != "no")) {
			t.Errorf("row %s lacks its baseline, ratio or target: %+v", r.ID, r)
		}
	}
	printed := table.String()
	lines := strings.Split(strings.TrimSpace(printed), "\n")
	if !strings.HasPrefix(lines[0], "section") || len(lines) < 1+len(want) {
		t.Errorf("the printed table has %d lines, want a header and %d rows:\n%s", len(lines), len(want), printed)
	}
	for _, r := range table.Rows {
		if !strings.Contains(printed, r.Scenario) {
			t.Errorf("the printed table lacks %s:\n%s", r.Scenario, printed)
		}
	}
	t.Logf("\n%s", printed)
}
