package playground

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// seedFE is the FE StatefulSet of the seed example, alone.
func seedFE(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../deploy/examples/seed-fe-plain.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		if strings.Contains(doc, "kind: StatefulSet") {
			return doc
		}
	}
	t.Fatal("seed-fe-plain.yaml has no StatefulSet")
	return ""
}

// TestSeedFEWithTheBuiltins: the built-in policies on the plain FE
// StatefulSet give the mutated object, its diff with the injected env, and
// the JSON patch the API server would get.
func TestSeedFEWithTheBuiltins(t *testing.T) {
	res, err := Evaluate(context.Background(), Case{Builtins: true, Object: seedFE(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Allowed || len(res.Problems) > 0 {
		t.Fatalf("allowed %v, problems %v, denials %v", res.Allowed, res.Problems, res.Denials)
	}
	if !slices.Contains(res.Applied, "doris-env") {
		t.Errorf("applied %v, want doris-env among them", res.Applied)
	}
	if !strings.Contains(res.Diff, "+") || !strings.Contains(res.Diff, "FE_IPADDRESS") {
		t.Errorf("the diff does not show the injected FE_IPADDRESS:\n%s", res.Diff)
	}
	if !strings.Contains(res.Patch, `"path": "/spec/template/spec/containers/0/env`) {
		t.Errorf("the JSON patch does not add the env:\n%s", res.Patch)
	}
}

const brokenPolicy = `apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: broken}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [statefulsets]}]
  validations:
    - expression: "object.spec.replicas >= 1 && object.spec.nosuchfield == 2"
    - expression: >
        object.spec.replicas >= 1 &&
          object.spec.otherfield == 2
`

// TestBrokenExpressionsAtTheirPlace: an expression that does not compile is
// a problem at the line and column of the editor where the compiler points,
// in a quoted scalar and in a folded block.
func TestBrokenExpressionsAtTheirPlace(t *testing.T) {
	res, err := Evaluate(context.Background(), Case{Policies: brokenPolicy, Object: seedFE(t)})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(brokenPolicy, "\n")
	for _, field := range []string{"nosuchfield", "otherfield"} {
		line := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, field) })
		column := strings.Index(lines[line], "."+field) + 1
		i := slices.IndexFunc(res.Problems, func(p Problem) bool { return strings.Contains(p.Message, field) })
		if i < 0 {
			t.Fatalf("no problem names %s: %+v", field, res.Problems)
		}
		p := res.Problems[i]
		if p.Editor != EditorPolicies || p.Line != line+1 || p.Column != column || p.Severity != "error" {
			t.Errorf("the problem with %s is at %s %d:%d (%s), want policies %d:%d:\n%s", field, p.Editor, p.Line, p.Column, p.Severity, line+1, column, p.Message)
		}
	}
}

// TestDelete: a DELETE is validated on the old object, and needs one.
func TestDelete(t *testing.T) {
	const protect = `apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: keep-protected}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [DELETE], resources: [configmaps]}]
  validations:
    - expression: "oldObject.metadata.?labels[?'protected'].orValue('') != 'true'"
      message: protected ConfigMaps stay
`
	const old = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: conf, namespace: shop, labels: {protected: 'true'}}\n"
	res, err := Evaluate(context.Background(), Case{Policies: protect, Operation: "DELETE", OldObject: old})
	if err != nil {
		t.Fatal(err)
	}
	if res.Allowed || len(res.Denials) != 1 || !strings.Contains(res.Denials[0], "protected ConfigMaps stay") {
		t.Errorf("the DELETE of a protected ConfigMap: allowed %v, denials %v, problems %v", res.Allowed, res.Denials, res.Problems)
	}
	res, err = Evaluate(context.Background(), Case{Policies: protect, Operation: "DELETE", Object: old})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(res.Problems, func(p Problem) bool {
		return p.Editor == EditorOldObject && strings.Contains(p.Message, "needs the old object")
	}) {
		t.Errorf("a DELETE without the old object: problems %v", res.Problems)
	}
}

// TestAuditResults: a validation whose action is Audit shows as an audit
// failure, neither denied nor warned.
func TestAuditResults(t *testing.T) {
	audited := replicasPolicy("note-replicas", "Audit", 3)
	res, err := Evaluate(context.Background(), Case{Policies: audited, Object: seedFE(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Allowed || len(res.Warnings) > 0 || len(res.Audited) != 1 || !strings.Contains(res.Audited[0], "fewer than 3 replicas (policy note-replicas)") {
		t.Errorf("allowed %v, warnings %v, audited %v", res.Allowed, res.Warnings, res.Audited)
	}
}

// TestUnreadableDocuments: each document that cannot be read is a problem
// on its own line, and the others are still evaluated.
func TestUnreadableDocuments(t *testing.T) {
	policies := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: not-a-policy}\n---\n# a comment\nkind: [broken\n---\n" + brokenPolicy
	res, err := Evaluate(context.Background(), Case{Policies: policies, Object: seedFE(t)})
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, p := range res.Problems {
		if p.Editor == EditorPolicies && p.Field == "" {
			lines = append(lines, p.Line)
		}
	}
	if !slices.Equal(lines, []int{6, 1}) && !slices.Equal(lines, []int{1, 6}) {
		t.Errorf("problems of the unreadable documents on lines %v, want 1 (not a policy) and 6 (broken YAML): %+v", lines, res.Problems)
	}
	if !slices.ContainsFunc(res.Problems, func(p Problem) bool { return strings.Contains(p.Message, "nosuchfield") }) {
		t.Errorf("the readable policy after them was not checked: %+v", res.Problems)
	}
}

// replicasPolicy is a ValidatingPolicy named name, with action, that fails
// a StatefulSet CREATE with fewer than min replicas.
func replicasPolicy(name, action string, min int) string {
	return fmt.Sprintf(`apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: %s}
spec:
  validationActions: [%s]
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [statefulsets]}]
  validations:
    - expression: object.spec.replicas >= %d
      message: fewer than %d replicas
`, name, action, min, min)
}
