package compile

import (
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// TestSharesAnswers: only conditions that read nothing of their policy are
// shared; when in doubt (a syntax error, a comprehension variable with a
// policy's name) a policy evaluates its own.
func TestSharesAnswers(t *testing.T) {
	for expression, want := range map[string]bool{
		"dorisRole(object) != ''": true,
		"object.metadata.?annotations[?'doris.apache.org/inject'].orValue('') != 'false'": true,
		"request.operation == 'CREATE' && oldObject == null":                              true,
		"params.data.enabled == 'true'":                                                   false,
		"variables.role == 'fe'":                                                          false,
		"has(variables.role)":                                                             false,
		"object.spec.containers.all(params, params.name != '')":                           false,
		"object.spec.containers.exists(c, c.name == ":                                     false,
	} {
		conditions := []admissionregistrationv1.MatchCondition{{Name: "a", Expression: "true"}, {Name: "b", Expression: expression}}
		if got := sharesAnswers(conditions); got != want {
			t.Errorf("sharesAnswers(%q) = %v, want %v", expression, got, want)
		}
	}
}
