package webhook

import (
	"context"
	"fmt"
	"slices"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/api/v1alpha1"
)

// Configurations keeps the rules of the MutatingWebhookConfiguration and
// ValidatingWebhookConfiguration named Name equal to the union of the loaded
// policies' rules, so a new policy is enforced without anyone editing them,
// and keeps the excluded namespaces out of both.
type Configurations struct {
	// Reader reads the configurations uncached; Writer updates them.
	Reader client.Reader
	Writer client.Writer
	Name   string
	// ExcludeNamespaces are never sent to the webhooks.
	ExcludeNamespaces []string
	Engine            *policies.Engine
	// CABundle, when set, is the CA the webhooks are called with; nil
	// leaves the caBundles as they are (certificates managed elsewhere).
	CABundle func() []byte
}

// policyRule sends policy objects to /validate, where broken ones are rejected.
var policyRule = admissionregistrationv1.RuleWithOperations{
	Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
	Rule: admissionregistrationv1.Rule{
		APIGroups:   []string{v1alpha1.GroupVersion.Group},
		APIVersions: []string{v1alpha1.GroupVersion.Version},
		Resources:   []string{"mutatingpolicies", "validatingpolicies"},
	},
}

// Sync updates both configurations where their rules or namespace selector
// differ. With no Name it does nothing: the configurations are managed by hand.
func (c *Configurations) Sync(ctx context.Context) error {
	if c.Name == "" {
		return nil
	}
	mutating, validating := c.Engine.Rules()
	validating = append([]admissionregistrationv1.RuleWithOperations{policyRule}, validating...)
	selector := c.namespaceSelector()
	err := c.sync(ctx, "MutatingWebhookConfiguration", &admissionregistrationv1.MutatingWebhookConfiguration{}, func(obj client.Object) {
		hooks := obj.(*admissionregistrationv1.MutatingWebhookConfiguration).Webhooks
		for i := range hooks {
			hooks[i].Rules, hooks[i].NamespaceSelector = mutating, selector
			c.setCABundle(&hooks[i].ClientConfig)
		}
	})
	if err != nil {
		return err
	}
	return c.sync(ctx, "ValidatingWebhookConfiguration", &admissionregistrationv1.ValidatingWebhookConfiguration{}, func(obj client.Object) {
		hooks := obj.(*admissionregistrationv1.ValidatingWebhookConfiguration).Webhooks
		for i := range hooks {
			hooks[i].Rules, hooks[i].NamespaceSelector = validating, selector
			c.setCABundle(&hooks[i].ClientConfig)
		}
	})
}

// sync reads the configuration of kind into obj, applies set, and writes it
// back when that changed it.
func (c *Configurations) sync(ctx context.Context, kind string, obj client.Object, set func(client.Object)) error {
	if err := c.Reader.Get(ctx, client.ObjectKey{Name: c.Name}, obj); err != nil {
		return fmt.Errorf("reading %s %s: %w", kind, c.Name, err)
	}
	before := obj.DeepCopyObject()
	set(obj)
	if equality.Semantic.DeepEqual(before, obj) {
		return nil
	}
	if err := c.Writer.Update(ctx, obj); err != nil {
		return fmt.Errorf("updating the rules of %s %s: %w", kind, c.Name, err)
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

// namespaceSelector excludes ExcludeNamespaces by their name label.
func (c *Configurations) namespaceSelector() *metav1.LabelSelector {
	names := slices.Sorted(slices.Values(c.ExcludeNamespaces))
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: names,
	}}}
}
