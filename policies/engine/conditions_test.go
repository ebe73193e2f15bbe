package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/doris-admission/doris-admission/policies/compile"
)

// costlyCondition costs about 25,000 to evaluate, far more than the rest of
// the policies below.
var costlyCondition = "object.metadata.name.size() > 0 && " +
	"[" + strings.Repeat("1,", 99) + "1].all(a, [" + strings.Repeat("1,", 49) + "1].all(b, a + b > 0))"

// spentOn is the CEL cost one Validate of the deployment spends with the
// policies of yamlText loaded.
func spentOn(t *testing.T, yamlText string) int64 {
	t.Helper()
	e, loaded := load(t, yamlText)
	for _, l := range loaded {
		if len(l.Problems) > 0 {
			t.Fatalf("policy %s: %v", l.Name(), l.Problems)
		}
	}
	ctx := WithRequestBudget(context.Background())
	res, err := e.Validate(ctx, request(t, object(t, deployment)))
	if err != nil || len(res.Denied) > 0 {
		t.Fatalf("Validate: %v %v", res, err)
	}
	return compile.RequestCostBudget - compile.BudgetLeft(ctx)
}

// validatingWithCondition is n ValidatingPolicies for deployments whose
// matchConditions ask condition.
func validatingWithCondition(n int, condition string) string {
	var text strings.Builder
	for i := range n {
		fmt.Fprintf(&text, `
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: check-%d}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  matchConditions:
    - name: costly
      expression: %q
  validations:
    - expression: "true"
`, i, condition)
	}
	return text.String()
}

// TestSharedConditionsAnswerOncePerRequest: policies that ask the same
// matchConditions of the same object spend their cost once in a request;
// conditions that read the policy's params or variables are each policy's
// own.
func TestSharedConditionsAnswerOncePerRequest(t *testing.T) {
	one := spentOn(t, validatingWithCondition(1, costlyCondition))
	ten := spentOn(t, validatingWithCondition(10, costlyCondition))
	if one < 10000 {
		t.Fatalf("the condition costs %d, want a costly one for this test", one)
	}
	if ten > one+one/10 {
		t.Errorf("10 policies with the same matchConditions spent %d, 1 spent %d: the answer was not shared", ten, one)
	}

	// The same condition, once through a variable of each policy.
	ownVariable := strings.ReplaceAll(validatingWithCondition(10, "variables.costly"), "  validations:", "  variables:\n    - name: costly\n      expression: "+fmt.Sprintf("%q", costlyCondition)+"\n  validations:")
	if own := spentOn(t, ownVariable); own < 9*one {
		t.Errorf("10 policies asking their own variables spent %d, 1 policy %d: they must each evaluate their own", own, one)
	}
}

// TestSharedConditionsFollowTheObject: a mutating policy that changes the
// object changes the answer the next policy with the same conditions gets,
// as if each evaluated its own.
func TestSharedConditionsFollowTheObject(t *testing.T) {
	// A MutatingPolicy with the same condition as the others, and patch.
	ifUnlabelled := func(name, patch string) string {
		return fmt.Sprintf(`
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: MutatingPolicy
metadata: {name: %s}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  matchConditions:
    - name: unlabelled
      expression: "!has(object.metadata.labels) || !('owner' in object.metadata.labels)"
  mutations:
    - patchType: JSONPatch
      jsonPatch:
        expression: "%s"
`, name, patch)
	}
	twoPolicies := ifUnlabelled("first", "[JSONPatch{op: 'add', path: '/metadata/labels', value: {'owner': 'first'}}]") +
		ifUnlabelled("second", "[JSONPatch{op: 'add', path: '/metadata/annotations', value: {'second': 'was here'}}]")
	e, _ := load(t, twoPolicies)
	res, err := e.Mutate(context.Background(), request(t, object(t, deployment)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"first"}, res.Applied); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	if slices.Contains(res.Applied, "second") || res.Object.GetAnnotations()["second"] != "" {
		t.Errorf("second's condition was answered for the object before first labelled it: %v", res.Object.GetAnnotations())
	}
}

// TestVariablesOncePerPolicy: the validations of one policy share one
// activation, so a variable they all read is evaluated once, not once per
// validation.
func TestVariablesOncePerPolicy(t *testing.T) {
	policy := func(validations int) string {
		text := `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: reads-a-variable}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  variables:
    - name: costly
      expression: ` + fmt.Sprintf("%q", costlyCondition) + `
  validations:
`
		for range validations {
			text += "    - expression: variables.costly\n"
		}
		return text
	}
	one, ten := spentOn(t, policy(1)), spentOn(t, policy(10))
	if one < 10000 || ten > one+one/10 {
		t.Errorf("a variable read by 1 validation cost %d, by 10 validations %d: want it evaluated once", one, ten)
	}
}
