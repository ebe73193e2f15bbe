package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyExportExamples(t *testing.T) {
	out, errOut, err := execute(t, "", "policy", "export", "--policies", examplePolicies)
	if err != nil || errOut != "" {
		t.Fatalf("export of the examples: %v\n%s", err, errOut)
	}
	for _, want := range []string{
		"kind: ValidatingAdmissionPolicy\nmetadata:\n  name: max-replicas",
		"kind: ValidatingAdmissionPolicyBinding\nmetadata:\n  name: owner-label\nspec:\n  policyName: owner-label\n  validationActions:\n  - Warn",
		"kind: MutatingAdmissionPolicy\nmetadata:\n  name: team-label",
		"kind: MutatingAdmissionPolicyBinding\nmetadata:\n  name: team-label\nspec:\n  policyName: team-label",
		"# Note: spec.validations[0].fieldPath (spec.replicas) is not carried over",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the export lacks %q:\n%s", want, out)
		}
	}
	if got := strings.Count(out, "\n---\n"); got != 5 {
		t.Errorf("got %d separators, want 5 (three policies and their bindings)", got)
	}
}

func TestPolicyExportBuiltinExplainsWhatItCannotExport(t *testing.T) {
	file := filepath.Join(t.TempDir(), "native.yaml")
	_, errOut, err := execute(t, "", "policy", "export", "--builtin", "--disable-builtin", "doris-checks", "-o", file)
	if err != nil {
		t.Fatalf("export of the built-in policies: %v\n%s", err, errOut)
	}
	for _, want := range []string{
		"MutatingPolicy doris-env: not exported: its expressions call dorisMountedConf, dorisFEService, which only doris-admission provide",
		"ValidatingPolicy node-ports: not exported: its expressions call inventory.nodePortOwners, which reads doris-admission's index of the cluster's Services",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "doris-checks") {
		t.Errorf("the disabled doris-checks is reported:\n%s", errOut)
	}
	if strings.Contains(errOut, "dorisRole") {
		t.Errorf("stderr names dorisRole, which is inlined:\n%s", errOut)
	}
	out, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("no output file: %v", err)
	}
	// The policies that call only the pure functions are exported, with
	// them inlined.
	for _, name := range []string{"doris-agent", "doris-conf", "doris-fe-start", "doris-grace-period", "doris-hooks", "doris-probes"} {
		if want := "kind: MutatingAdmissionPolicy\nmetadata:\n  name: " + name + "\n"; !strings.Contains(string(out), want) {
			t.Errorf("the export lacks %s:\n%s", name, out)
		}
	}
	if !strings.Contains(string(out), "# MutatingPolicy doris-agent (built-in)\n# Note: the calls of doris-admission's dorisContainer and dorisRole are inlined") {
		t.Errorf("the export does not say what it inlined:\n%s", out)
	}
}

func TestPolicyExportReadErrors(t *testing.T) {
	_, errOut, err := execute(t, "", "policy", "export", "--policies", "testdata/mixed.yaml")
	if !errors.Is(err, errFailed) {
		t.Errorf("export of a file with broken documents returned %v, want errFailed", err)
	}
	if !strings.Contains(errOut, "testdata/mixed.yaml: document 3") {
		t.Errorf("stderr does not name the broken document:\n%s", errOut)
	}
	if _, _, err := execute(t, "", "policy", "export"); err == nil || !strings.Contains(err.Error(), "nothing to export") {
		t.Errorf("export with nothing selected returned %v", err)
	}
}
