package main

import (
	"errors"
	"strings"
	"testing"
)

func TestPolicyLintExitStatus(t *testing.T) {
	out, _, err := execute(t, "", "policy", "lint", "../../policies/lint/testdata")
	if !errors.Is(err, errFailed) || !strings.HasSuffix(out, "5 policies: 4 errors, 1 warnings\n") {
		t.Errorf("the seeded mistakes: err %v, output:\n%s", err, out)
	}
	for _, want := range []string{
		"../../policies/lint/testdata/typo.yaml:28: error: ValidatingPolicy spec-typo: spec.validation: spec has no field \"validation\"\n    suggestion: did you mean \"validations\"?",
		"cost: MutatingPolicy append-env: highest estimate 80 (spec.mutations[0].jsonPatch.expression, on the largest Deployment its schema allows), limit 1,000,000 per expression: within the limit",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = execute(t, "", "policy", "lint", examplePolicies, "-f", "../../deploy/examples/policy-tests")
	if err != nil || !strings.HasSuffix(out, "3 policies: 0 errors, 0 warnings\n") {
		t.Errorf("the example policies: err %v, output:\n%s", err, out)
	}
}
