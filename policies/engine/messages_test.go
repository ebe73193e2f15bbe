package engine

import (
	"context"
	"strings"
	"testing"
)

// TestMessagesOnlyForFailedValidations: a policy's messageExpressions are
// evaluated only when one of its validations does not pass. A failed
// validation gets its message; messages that together cost more than the
// policy may spend cannot deny a request whose validations all pass
// (Kubernetes' validator evaluates every message on every request, and would).
func TestMessagesOnlyForFailedValidations(t *testing.T) {
	list := "[" + strings.Repeat("1,", 99) + "1]"
	expensive := list + ".all(a, " + list + ".all(b, " + list + ".all(c, a + b + c > 0))) ? 'never' : 'never'"
	e, _ := load(t, `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: replicas}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  validations:
    - expression: "object.spec.replicas < 10"
      messageExpression: "`+expensive+`"
    - expression: "object.spec.replicas < 5"
      messageExpression: "'replicas is ' + string(object.spec.replicas) + ', more than 4'"
`)
	req := request(t, object(t, deployment)) // 7 replicas
	res, err := e.Validate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Denied) != 1 || res.Denied[0].Message != "replicas is 7, more than 4" {
		t.Errorf("want the second validation denied with its message, got %v", res.Denied)
	}

	// Each message costs about half a million; together they are past the
	// 10,000,000 a policy may spend on a request.
	long := "[" + strings.Repeat("1,", 299) + "1]"
	costly := long + ".all(a, " + long + ".all(b, a + b > 0)) ? 'never' : 'never'"
	policy := `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: many-messages}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  validations:
` + strings.Repeat("    - expression: \"object.spec.replicas < 10\"\n      messageExpression: \""+costly+"\"\n", 25)
	e, _ = load(t, policy)
	res, err = e.Validate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Denied) != 0 {
		t.Errorf("validations that pass were denied for their messages: %v", res.Denied)
	}
}
