package webhook

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/doris-admission/doris-admission/policies/api/v1alpha1"
	"github.com/doris-admission/doris-admission/policies/engine"
)

// Configurations keeps the MutatingWebhookConfiguration and
// ValidatingWebhookConfiguration named Name equal to the loaded policies, so
// a new policy is enforced without anyone editing them. Each configuration
// keeps its first webhook, the one it was installed with (the anchor), and
// gets one webhook per group of policies (engine.WebhookGroup), called on
// the anchor's service at <path>/<group>: sent only what the group's
// policies may match, with their selectors, and failing as they do. So a
// server outage blocks only what Fail policies guard.
//
// The mutating anchor has no rules; the validating anchor sends the policy
// objects to /validate/policies, where broken ones are rejected.
// Namespaces in ExcludeNamespaces (and kube-node-lease) and the server's own
// policy and webhook objects are never sent, unless a policy names them
// explicitly.
type Configurations struct {
	// Reader reads the configurations uncached; Writer updates them.
	Reader client.Reader
	Writer client.Writer
	Name   string
	// ExcludeNamespaces are never sent to the webhooks.
	ExcludeNamespaces []string
	Engine            *engine.Engine
	// CABundle, when set, is the CA the webhooks are called with; nil
	// leaves the caBundles as they are (certificates managed elsewhere).
	CABundle func() []byte
}

// policyRule sends policy objects to /validate/policies.
var policyRule = admissionregistrationv1.RuleWithOperations{
	Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
	Rule: admissionregistrationv1.Rule{
		APIGroups:   []string{v1alpha1.GroupVersion.Group},
		APIVersions: []string{v1alpha1.GroupVersion.Version},
		Resources:   []string{"mutatingpolicies", "validatingpolicies"},
	},
}

// alwaysExcluded are namespaces never sent, whatever the flags say: the
// node heartbeats.
var alwaysExcluded = []string{"kube-node-lease"}

// Sync rewrites both configurations where they differ from the policies.
// With no Name it does nothing: the configurations are managed by hand.
func (c *Configurations) Sync(ctx context.Context) error {
	if c.Name == "" {
		return nil
	}
	groups := c.Engine.WebhookGroups()
	err := c.sync(ctx, "MutatingWebhookConfiguration", &admissionregistrationv1.MutatingWebhookConfiguration{}, func(obj client.Object) error {
		config := obj.(*admissionregistrationv1.MutatingWebhookConfiguration)
		if len(config.Webhooks) == 0 {
			return fmt.Errorf("it has no webhook to call the server with; reinstall it")
		}
		anchor := config.Webhooks[0]
		anchor.Rules, anchor.NamespaceSelector = []admissionregistrationv1.RuleWithOperations{}, c.namespaceSelector(nil)
		c.setCABundle(&anchor.ClientConfig)
		config.Webhooks = []admissionregistrationv1.MutatingWebhook{anchor}
		for _, g := range groups {
			if len(g.Mutating) > 0 {
				config.Webhooks = append(config.Webhooks, c.mutatingWebhook(anchor, g))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.sync(ctx, "ValidatingWebhookConfiguration", &admissionregistrationv1.ValidatingWebhookConfiguration{}, func(obj client.Object) error {
		config := obj.(*admissionregistrationv1.ValidatingWebhookConfiguration)
		if len(config.Webhooks) == 0 {
			return fmt.Errorf("it has no webhook to call the server with; reinstall it")
		}
		anchor := config.Webhooks[0]
		anchor.Rules, anchor.NamespaceSelector = []admissionregistrationv1.RuleWithOperations{policyRule}, c.namespaceSelector(nil)
		anchor.ClientConfig = clientConfigFor(anchor.ClientConfig, ValidatePath, engine.PolicyGroup)
		c.setCABundle(&anchor.ClientConfig)
		config.Webhooks = []admissionregistrationv1.ValidatingWebhook{anchor}
		for _, g := range groups {
			if len(g.Validating) > 0 {
				config.Webhooks = append(config.Webhooks, c.validatingWebhook(anchor, g))
			}
		}
		return nil
	})
}

// mutatingWebhook is the webhook that sends group g's requests to
// /mutate/<g.ID>, on anchor's service and with its timeout.
func (c *Configurations) mutatingWebhook(anchor admissionregistrationv1.MutatingWebhook, g engine.WebhookGroup) admissionregistrationv1.MutatingWebhook {
	reinvoke := admissionregistrationv1.NeverReinvocationPolicy
	if g.Reinvoke {
		reinvoke = admissionregistrationv1.IfNeededReinvocationPolicy
	}
	return admissionregistrationv1.MutatingWebhook{
		Name:                    g.ID + ".mutate.doris-admission.io",
		ClientConfig:            clientConfigFor(anchor.ClientConfig, MutatePath, g.ID),
		Rules:                   g.Mutating,
		FailurePolicy:           ptr.To(g.FailurePolicy),
		MatchPolicy:             ptr.To(admissionregistrationv1.Equivalent),
		NamespaceSelector:       c.namespaceSelector(g.NamespaceSelector),
		ObjectSelector:          objectSelector(g.ObjectSelector),
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		TimeoutSeconds:          anchor.TimeoutSeconds,
		AdmissionReviewVersions: []string{"v1"},
		ReinvocationPolicy:      &reinvoke,
		MatchConditions:         c.matchConditions(g.Mutating),
	}
}

// validatingWebhook is the webhook that sends group g's requests to
// /validate/<g.ID>, on anchor's service and with its timeout.
func (c *Configurations) validatingWebhook(anchor admissionregistrationv1.ValidatingWebhook, g engine.WebhookGroup) admissionregistrationv1.ValidatingWebhook {
	return admissionregistrationv1.ValidatingWebhook{
		Name:                    g.ID + ".validate.doris-admission.io",
		ClientConfig:            clientConfigFor(anchor.ClientConfig, ValidatePath, g.ID),
		Rules:                   g.Validating,
		FailurePolicy:           ptr.To(g.FailurePolicy),
		MatchPolicy:             ptr.To(admissionregistrationv1.Equivalent),
		NamespaceSelector:       c.namespaceSelector(g.NamespaceSelector),
		ObjectSelector:          objectSelector(g.ObjectSelector),
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		TimeoutSeconds:          anchor.TimeoutSeconds,
		AdmissionReviewVersions: []string{"v1"},
		MatchConditions:         c.matchConditions(g.Validating),
	}
}

// clientConfigFor is config calling endpoint/group instead of its path.
func clientConfigFor(config admissionregistrationv1.WebhookClientConfig, endpoint, group string) admissionregistrationv1.WebhookClientConfig {
	path := endpoint + "/" + group
	switch {
	case config.Service != nil:
		service := *config.Service
		service.Path = &path
		config.Service = &service
	case config.URL != nil:
		if u, err := url.Parse(*config.URL); err == nil {
			u.Path = path
			config.URL = ptr.To(u.String())
		}
	}
	return config
}

// sync reads the configuration of kind into obj, applies set, and writes it
// back when that changed it.
func (c *Configurations) sync(ctx context.Context, kind string, obj client.Object, set func(client.Object) error) error {
	if err := c.Reader.Get(ctx, client.ObjectKey{Name: c.Name}, obj); err != nil {
		return fmt.Errorf("reading %s %s: %w", kind, c.Name, err)
	}
	before := obj.DeepCopyObject()
	if err := set(obj); err != nil {
		return fmt.Errorf("%s %s: %w", kind, c.Name, err)
	}
	if equality.Semantic.DeepEqual(before, obj) {
		return nil
	}
	if err := c.Writer.Update(ctx, obj); err != nil {
		return fmt.Errorf("updating the webhooks of %s %s: %w", kind, c.Name, err)
	}
	return nil
}

// setCABundle puts the managed CA bundle in a webhook's client config.
func (c *Configurations) setCABundle(config *admissionregistrationv1.WebhookClientConfig) {
	if c.CABundle == nil {
		return
	}
	if bundle := c.CABundle(); len(bundle) > 0 {
		config.CABundle = bundle
	}
}

// namespaceSelector is the policies' own selector with the excluded
// namespaces left out, but those it names explicitly.
func (c *Configurations) namespaceSelector(own *metav1.LabelSelector) *metav1.LabelSelector {
	named := namedNamespaces(own)
	var excluded []string
	for _, ns := range slices.Concat(c.ExcludeNamespaces, alwaysExcluded) {
		if !slices.Contains(named, ns) && !slices.Contains(excluded, ns) {
			excluded = append(excluded, ns)
		}
	}
	slices.Sort(excluded)
	out := &metav1.LabelSelector{}
	if own != nil {
		out = own.DeepCopy()
	}
	if len(excluded) > 0 {
		out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: excluded,
		})
	}
	return out
}

// namedNamespaces are the namespaces a selector names by their name label.
func namedNamespaces(s *metav1.LabelSelector) []string {
	if s == nil {
		return nil
	}
	var named []string
	if name, ok := s.MatchLabels["kubernetes.io/metadata.name"]; ok {
		named = append(named, name)
	}
	for _, r := range s.MatchExpressions {
		if r.Key == "kubernetes.io/metadata.name" && r.Operator == metav1.LabelSelectorOpIn {
			named = append(named, r.Values...)
		}
	}
	return named
}

// objectSelector is s, or the empty selector (everything) the API server
// defaults to.
func objectSelector(s *metav1.LabelSelector) *metav1.LabelSelector {
	if s == nil {
		return &metav1.LabelSelector{}
	}
	return s
}

// matchConditions keep the server's own policy and webhook objects, which
// a namespace selector cannot exclude (they are cluster-scoped), from a
// webhook whose rules take them in by a wildcard only.
func (c *Configurations) matchConditions(rules []admissionregistrationv1.RuleWithOperations) []admissionregistrationv1.MatchCondition {
	var conditions []admissionregistrationv1.MatchCondition
	if coversByWildcard(rules, v1alpha1.GroupVersion.Group) {
		conditions = append(conditions, admissionregistrationv1.MatchCondition{
			Name:       "not-doris-admission-policies",
			Expression: fmt.Sprintf("request.resource.group != %q", v1alpha1.GroupVersion.Group),
		})
	}
	if coversByWildcard(rules, admissionregistrationv1.GroupName) {
		conditions = append(conditions, admissionregistrationv1.MatchCondition{
			Name:       "not-doris-admission-webhooks",
			Expression: fmt.Sprintf("request.resource.group != %q || request.name != %q", admissionregistrationv1.GroupName, c.Name),
		})
	}
	return conditions
}

// coversByWildcard tells whether rules take in group's resources only by a
// wildcard: "*" as the group or as the resource.
func coversByWildcard(rules []admissionregistrationv1.RuleWithOperations, group string) bool {
	wildcard, explicit := false, false
	for _, r := range rules {
		groupOK := slices.Contains(r.APIGroups, "*") || slices.Contains(r.APIGroups, group)
		if !groupOK {
			continue
		}
		if slices.Contains(r.APIGroups, group) && !slices.ContainsFunc(r.Resources, func(s string) bool { return strings.HasPrefix(s, "*") }) {
			explicit = true
		} else {
			wildcard = true
		}
	}
	return wildcard && !explicit
}
