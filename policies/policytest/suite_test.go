package policytest

import (
	"context"
	"strings"
	"testing"
)

// run runs every suite under path.
func run(t *testing.T, path string) []Result {
	t.Helper()
	suites, err := Find(path)
	if err != nil {
		t.Fatal(err)
	}
	var results []Result
	for _, s := range suites {
		results = append(results, s.Run(context.Background(), false)...)
	}
	return results
}

// TestBuiltinSuites runs the suites the built-in policies ship with.
func TestBuiltinSuites(t *testing.T) {
	results := run(t, "../builtin/tests")
	if len(results) < 13 {
		t.Fatalf("found %d cases in the built-in suites, want them all", len(results))
	}
	for _, r := range results {
		if !r.Passed() {
			t.Errorf("%s: %s:\n%s", r.Suite, r.Case, strings.Join(r.Failures, "\n"))
		}
	}
}

// TestExampleSuites runs the suites of the example policies: deploy/examples'
// own and the Pod Security Standards'.
func TestExampleSuites(t *testing.T) {
	for _, path := range []string{"../../deploy/examples/policy-tests", "../../deploy/examples/pod-security-tests"} {
		results := run(t, path)
		if len(results) == 0 {
			t.Fatalf("no cases found in %s", path)
		}
		for _, r := range results {
			if !r.Passed() {
				t.Errorf("%s: %s:\n%s", r.Suite, r.Case, strings.Join(r.Failures, "\n"))
			}
		}
	}
}

// TestBrokenSuiteFailsReadably: each wrong expectation fails its case with a
// message that shows what came out instead.
func TestBrokenSuiteFailsReadably(t *testing.T) {
	results := run(t, "testdata/broken")
	want := map[string][]string{
		"expects 12 replicas to pass": {"allowed = false, want true; the denials are:\n    spec.replicas: asks for 12 replicas; at most 5 are allowed (policy max-replicas)"},
		"expects the wrong team": {
			"want no warnings; the warnings are:\n    metadata.labels: has no owner label",
			"the mutated object differs (- want, + got):\n--- want\n+++ got\n",
			"-    team: storage\n+    team: platform\n",
		},
		"names a resource that is not there": {"resource Deployment/shop/nope is not among the suite's resources"},
	}
	if len(results) != len(want) {
		t.Fatalf("got %d results, want %d", len(results), len(want))
	}
	for _, r := range results {
		if r.Passed() {
			t.Errorf("%s passed; its expectation is wrong on purpose", r.Case)
		}
		got := strings.Join(r.Failures, "\n")
		for _, w := range want[r.Case] {
			if !strings.Contains(got, w) {
				t.Errorf("%s: failures do not contain %q:\n%s", r.Case, w, got)
			}
		}
	}
}

// TestNonIdempotentMutationFails: a mutation that adds on every pass fails
// its case, whatever the case expects of the object.
func TestNonIdempotentMutationFails(t *testing.T) {
	results := run(t, "testdata/not-idempotent")
	if len(results) != 1 || results[0].Passed() || !strings.Contains(strings.Join(results[0].Failures, "\n"), "mutating the mutated object again changes it") {
		t.Errorf("want the case failed for changing the object again, got %+v", results)
	}
}

func TestSuiteErrorsNameTheField(t *testing.T) {
	_, err := Find("testdata/invalid")
	for _, want := range []string{`document 1: error unmarshaling JSON: while decoding JSON: json: unknown field "expected"`, "document 2: ", "no policies: list policy files", "cases[0].expect.allowed is missing", `cases[0].resource "web": write Kind/namespace/name or Kind/name`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}
