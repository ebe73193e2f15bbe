package lint

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// TestLintFindsSeededMistakes: each fixture holds one mistake; lint finds
// each at its line, with a suggestion.
func TestLintFindsSeededMistakes(t *testing.T) {
	report, err := Lint(context.Background(), "testdata", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		at       string // file:line
		severity Severity
		field    string
		message  string
	}{
		{"testdata/append-env.yaml:14", Error, "spec.mutations", "not idempotent: applied to its own result for Deployment shop/web"},
		{"testdata/message.yaml:15", Error, "spec.validations[0].messageExpression", "fails on Deployment shop/web, where its validation fails"},
		{"testdata/typo.yaml:14", Error, "spec.validations[0].expression", "undefined field 'replica'"},
		{"testdata/typo.yaml:28", Error, "spec.validation", `spec has no field "validation"`},
		{"testdata/unbounded.yaml:18", Warning, "spec.validations[0].expression", "the estimated cost has no bound"},
	}
	if len(report.Findings) != len(want) {
		for _, f := range report.Findings {
			t.Log(f)
		}
		t.Fatalf("got %d findings, want %d", len(report.Findings), len(want))
	}
	for i, w := range want {
		f := report.Findings[i]
		at := f.File + ":" + itoa(f.Line)
		if at != w.at || f.Severity != w.severity || f.Field != w.field || !strings.Contains(f.Message, w.message) || f.Suggestion == "" {
			t.Errorf("finding %d = %s\nwant %s %s %s %q with a suggestion", i, f, w.at, w.severity, w.field, w.message)
		}
	}
	if report.Errors() != 4 || report.Policies != 5 {
		t.Errorf("errors %d of %d policies, want 4 of 5", report.Errors(), report.Policies)
	}
	if !strings.Contains(report.Findings[3].Suggestion, `did you mean "validations"`) {
		t.Errorf("the misspelled field gets no correction: %s", report.Findings[3])
	}
}

// TestLintOfTheShippedPoliciesHasNoErrors: the built-in and example policies
// are clean but for the estimator's blind spots.
func TestLintOfTheShippedPoliciesHasNoErrors(t *testing.T) {
	for _, path := range []string{"../builtin", "../../deploy/examples/policies"} {
		report, err := Lint(context.Background(), path, []string{"../builtin/tests/resources", "../../deploy/examples/policy-tests"})
		if err != nil {
			t.Fatal(err)
		}
		if report.Errors() != 0 {
			for _, f := range report.Findings {
				t.Log(f)
			}
			t.Errorf("%s: %d errors", path, report.Errors())
		}
		if len(report.Costs) == 0 {
			t.Errorf("%s: no cost estimates", path)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
