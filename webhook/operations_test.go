package webhook

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// operationPolicies forbid deleting Doris Services and exec into pods.
const operationPolicies = `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: keep-doris-services}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [DELETE], resources: [services]}]
  validations:
    - expression: "!('doris.apache.org/role' in oldObject.metadata.?labels.orValue({}))"
      message: Doris Services are kept
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: no-exec}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CONNECT], resources: [pods/exec]}]
  validations:
    - expression: "object.command[0] != 'rm'"
      message: no rm in pods
`

// Every operation a policy names reaches it: DELETE with the oldObject,
// CONNECT with its options, in the validating phase; the mutating webhook is
// sent only the Service requests it validates before node ports are
// allocated (CREATE and UPDATE).
func TestEveryOperationReachesItsPolicy(t *testing.T) {
	engine := testEngine(t, operationPolicies)
	ts, err := startServer(t, Options{}, engine)
	if err != nil {
		t.Fatal(err)
	}
	service := `{"apiVersion":"v1","kind":"Service","metadata":{"name":"x","namespace":"shop","labels":{"doris.apache.org/role":"fe"}},"spec":{"ports":[{"port":9030}]}}`
	tests := []struct {
		name, path, review string
		allowed            bool
		message            string
	}{
		{"DELETE of a Doris Service", ValidatePath, string(reviewOf("Service", "DELETE", "", `"oldObject":`+service)), false, "Doris Services are kept (policy keep-doris-services)"},
		{"DELETE of another Service", ValidatePath, string(reviewOf("Service", "DELETE", "", `"oldObject":{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"}}`)), true, ""},
		{"DELETE at the mutating webhook", MutatePath, string(reviewOf("Service", "DELETE", "", `"oldObject":`+service)), true, ""},
		{"CONNECT to exec rm", ValidatePath, execReview(`["rm","-rf","/"]`), false, "no rm in pods (policy no-exec)"},
		{"CONNECT to exec ls", ValidatePath, execReview(`["ls"]`), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := ts.post(t, tt.path, "application/json", strings.NewReader(tt.review))
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(body, &out); status != http.StatusOK || err != nil || out.Response == nil {
				t.Fatalf("HTTP %d %v: %s", status, err, body)
			}
			if out.Response.Allowed != tt.allowed || (tt.message != "" && (out.Response.Result == nil || !strings.Contains(out.Response.Result.Message, tt.message))) {
				t.Errorf("allowed=%v %+v, want allowed=%v with %q", out.Response.Allowed, out.Response.Result, tt.allowed, tt.message)
			}
		})
	}
	mutating, validating := engine.Rules()
	for _, rule := range mutating {
		if coversServices(rule) && (len(rule.Operations) != 2 || rule.Operations[0] != admissionregistrationv1.Create || rule.Operations[1] != admissionregistrationv1.Update) {
			t.Errorf("the mutating webhook is sent %v of Services, want only CREATE and UPDATE", rule.Operations)
		}
	}
	if !hasRule(validating, admissionregistrationv1.Delete, "services") || !hasRule(validating, admissionregistrationv1.Connect, "pods/exec") {
		t.Errorf("the validating webhook is not sent DELETE of services and CONNECT of pods/exec: %+v", validating)
	}
}

// execReview is a CONNECT of pods/exec with command.
func execReview(command string) string {
	return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-exec","kind":{"group":"","version":"v1","kind":"PodExecOptions"},` +
		`"resource":{"group":"","version":"v1","resource":"pods"},"subResource":"exec","namespace":"shop","name":"doris-fe-0","operation":"CONNECT","userInfo":{"username":"alice"},` +
		`"object":{"apiVersion":"v1","kind":"PodExecOptions","command":` + command + `,"container":"fe"}}}`
}

func coversServices(rule admissionregistrationv1.RuleWithOperations) bool {
	return strings.Join(rule.APIGroups, ",") == "" && strings.Join(rule.Resources, ",") == "services"
}

func hasRule(rules []admissionregistrationv1.RuleWithOperations, op admissionregistrationv1.OperationType, resource string) bool {
	for _, rule := range rules {
		for _, r := range rule.Resources {
			for _, o := range rule.Operations {
				if r == resource && o == op {
					return true
				}
			}
		}
	}
	return false
}
