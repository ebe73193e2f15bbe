package main

import (
	"errors"
	"strings"
	"testing"
)

func TestPolicyTestCountsAndExitStatus(t *testing.T) {
	out, _, err := execute(t, "", "policy", "test", "../../deploy/examples/policy-tests")
	if err != nil || !strings.HasSuffix(out, "4 passed, 0 failed\n") || strings.Count(out, "PASS  ") != 4 {
		t.Errorf("passing suites: err %v, output:\n%s", err, out)
	}
	out, _, err = execute(t, "", "policy", "test", "../../policies/policytest/testdata/broken", "../../deploy/examples/policy-tests")
	if !errors.Is(err, errFailed) || !strings.HasSuffix(out, "4 passed, 3 failed\n") {
		t.Errorf("a failing suite: err %v, output:\n%s", err, out)
	}
	if !strings.Contains(out, "FAIL  broken on purpose: expects the wrong team\n      want no warnings") {
		t.Errorf("failures are not printed under their case:\n%s", out)
	}
	_, errOut, err := execute(t, "", "policy", "test", "testdata")
	if !errors.Is(err, errFailed) || !strings.Contains(errOut, "no test suite found") {
		t.Errorf("a folder without suites: err %v, stderr %q", err, errOut)
	}
}
