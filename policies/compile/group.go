package compile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/doris-admission/doris-admission/policies"
)

// groupOf is the ID of the group that serves a policy: its failurePolicy,
// and a hash of its selectors when it has any.
func groupOf(p policies.Policy, failure admissionregistrationv1.FailurePolicyType) string {
	id := strings.ToLower(string(failure))
	m := p.MatchConstraints()
	if m == nil {
		return id
	}
	namespaces, objects := Narrowing(m.NamespaceSelector), Narrowing(m.ObjectSelector)
	if namespaces == nil && objects == nil {
		return id
	}
	data, _ := json.Marshal([]*metav1.LabelSelector{namespaces, objects})
	sum := sha256.Sum256(data)
	return id + "-" + hex.EncodeToString(sum[:5])
}

// Narrowing is s, or nil when it selects everything.
func Narrowing(s *metav1.LabelSelector) *metav1.LabelSelector {
	if s == nil || (len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0) {
		return nil
	}
	return s
}
