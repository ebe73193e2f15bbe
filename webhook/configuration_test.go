package webhook

import (
	"context"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// containmentPolicies: a fail-closed and a fail-open policy, one narrowed
// by a namespace selector that names kube-system, one on every resource.
const containmentPolicies = `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: open-configmaps}
spec:
  failurePolicy: Ignore
  matchConstraints:
    objectSelector: {matchLabels: {team: shop}}
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}]
  validations: [{expression: "true"}]
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: system-leases}
spec:
  matchConstraints:
    namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [kube-system]}]}
    resourceRules: [{apiGroups: [coordination.k8s.io], apiVersions: [v1], operations: [UPDATE], resources: [leases]}]
  validations: [{expression: "true"}]
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: everything}
spec:
  failurePolicy: Ignore
  matchConstraints:
    resourceRules: [{apiGroups: ["*"], apiVersions: ["*"], operations: [DELETE], resources: ["*"]}]
  validations: [{expression: "true"}]
`

// Sync writes one webhook per group of policies (failurePolicy and
// selectors), each failing as its policies do, with their selectors and
// the excluded namespaces (but those a policy names), on the anchor's
// service; wildcard rules do not take in the server's own objects.
func TestSyncSplitsWebhooksByGroup(t *testing.T) {
	engine := testEngine(t, containmentPolicies)
	service := func(path string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "doris-admission", Name: "doris-admission", Path: ptr.To(path)}, CABundle: []byte("ca")}
	}
	c := fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "doris-admission"},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "mutate.doris-admission.io", ClientConfig: service("/mutate"), TimeoutSeconds: ptr.To[int32](3)}}},
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "doris-admission"},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "validate.doris-admission.io", ClientConfig: service("/validate"), TimeoutSeconds: ptr.To[int32](5)}}},
	).Build()
	configs := &Configurations{Reader: c, Writer: c, Name: "doris-admission", ExcludeNamespaces: []string{"doris-admission", "kube-system"}, Engine: engine}
	if err := configs.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	var validating admissionregistrationv1.ValidatingWebhookConfiguration
	if err := c.Get(context.Background(), client.ObjectKey{Name: "doris-admission"}, &validating); err != nil {
		t.Fatal(err)
	}
	byName := map[string]admissionregistrationv1.ValidatingWebhook{}
	var names []string
	for _, w := range validating.Webhooks {
		byName[w.Name] = w
		names = append(names, w.Name)
	}
	if names[0] != "validate.doris-admission.io" || *byName[names[0]].ClientConfig.Service.Path != "/validate/policies" {
		t.Errorf("the anchor is not first, sending policy objects to /validate/policies: %v", names)
	}
	fail, ignore := byName["fail.validate.doris-admission.io"], byName["ignore.validate.doris-admission.io"]
	if fail.Name == "" || ignore.Name == "" || *fail.FailurePolicy != admissionregistrationv1.Fail || *ignore.FailurePolicy != admissionregistrationv1.Ignore {
		t.Fatalf("want a fail-closed webhook for the built-ins and a fail-open one for everything: %v", names)
	}
	if *fail.ClientConfig.Service.Path != "/validate/fail" || string(fail.ClientConfig.CABundle) != "ca" || *fail.TimeoutSeconds != 5 {
		t.Errorf("the fail group's webhook is not on the anchor's service and timeout: %+v", fail.ClientConfig)
	}
	if len(ignore.MatchConditions) != 2 {
		t.Errorf("a wildcard rule takes in the server's own policies and webhook configurations: match conditions %+v", ignore.MatchConditions)
	}
	var open, system admissionregistrationv1.ValidatingWebhook
	for _, w := range validating.Webhooks {
		switch {
		case strings.HasPrefix(w.Name, "ignore-"):
			open = w
		case strings.HasPrefix(w.Name, "fail-"):
			system = w
		}
	}
	if open.Name == "" || *open.FailurePolicy != admissionregistrationv1.Ignore || open.ObjectSelector.MatchLabels["team"] != "shop" || len(open.Rules) != 1 || open.Rules[0].Resources[0] != "configmaps" {
		t.Errorf("open-configmaps has no webhook of its own with its object selector and rules: %+v", open)
	}
	excluded := system.NamespaceSelector.MatchExpressions[len(system.NamespaceSelector.MatchExpressions)-1]
	if system.Name == "" || !slices.Equal(excluded.Values, []string{"doris-admission", "kube-node-lease"}) || system.NamespaceSelector.MatchExpressions[0].Values[0] != "kube-system" {
		t.Errorf("system-leases, which names kube-system, is not sent kube-system (and only what its selector takes): %+v", system.NamespaceSelector)
	}
	if excluded := fail.NamespaceSelector.MatchExpressions[0].Values; !slices.Equal(excluded, []string{"doris-admission", "kube-node-lease", "kube-system"}) {
		t.Errorf("the built-ins' webhook excludes %v", excluded)
	}
	// A second Sync changes nothing.
	before := validating.ResourceVersion
	if err := configs.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(context.Background(), client.ObjectKey{Name: "doris-admission"}, &validating); err != nil || validating.ResourceVersion != before {
		t.Errorf("a second Sync rewrote the configuration: %v", err)
	}
}
