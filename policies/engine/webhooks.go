package engine

import (
	"cmp"
	"slices"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/doris-admission/doris-admission/policies/compile"
)

// WebhookGroup is the policies one pair of webhooks (mutating and
// validating) serves: those with the same failurePolicy, namespaceSelector
// and objectSelector. Its webhooks are sent only what these policies may
// match, and fail as they do: a server outage blocks what the Fail
// policies guard and nothing else.
type WebhookGroup struct {
	// ID names the group in webhook names and paths: "fail" or "ignore",
	// with a hash of the selectors when the policies have any.
	ID            string
	FailurePolicy admissionregistrationv1.FailurePolicyType
	// NamespaceSelector and ObjectSelector are the policies' own (nil when
	// they have none).
	NamespaceSelector, ObjectSelector *metav1.LabelSelector
	// Mutating are the rules of the group's mutating policies, with the
	// CREATE and UPDATE of Services its validating policies check (they are
	// validated in the mutating phase); Validating are its validating
	// policies' rules.
	Mutating, Validating []admissionregistrationv1.RuleWithOperations
	// Reinvoke tells whether a mutating policy of the group asks to run
	// again when a later webhook changed the object.
	Reinvoke bool
}

// PolicyGroup is the ID of the webhooks that send policy objects to
// /validate, where broken ones are rejected.
const PolicyGroup = "policies"

// WebhookGroups are the groups of the loaded mutating and validating
// policies, by ID.
func (e *Engine) WebhookGroups() []WebhookGroup {
	set := e.current.Load()
	byID := map[string]*WebhookGroup{}
	group := func(c *compile.Compiled) *WebhookGroup {
		g, ok := byID[c.Group]
		if !ok {
			m := c.MatchConstraints()
			g = &WebhookGroup{ID: c.Group, FailurePolicy: c.Failure, NamespaceSelector: compile.Narrowing(m.NamespaceSelector), ObjectSelector: compile.Narrowing(m.ObjectSelector)}
			byID[c.Group] = g
		}
		return g
	}
	for _, c := range set.mutating {
		if c.MatchConstraints() == nil {
			continue // matches nothing
		}
		g := group(c)
		g.Mutating = addRules(g.Mutating, c)
		g.Reinvoke = g.Reinvoke || c.Mutating.Spec.ReinvocationPolicy == admissionregistrationv1.IfNeededReinvocationPolicy
	}
	for _, c := range set.validating {
		if c.MatchConstraints() == nil {
			continue
		}
		g := group(c)
		g.Validating = addRules(g.Validating, c)
		for _, rule := range g.Validating {
			if rule, ok := validatedWhenMutating(rule); ok {
				g.Mutating = addRule(g.Mutating, rule)
			}
		}
	}
	groups := make([]WebhookGroup, 0, len(byID))
	for _, g := range byID {
		groups = append(groups, *g)
	}
	slices.SortFunc(groups, func(a, b WebhookGroup) int { return cmp.Compare(a.ID, b.ID) })
	return groups
}

// addRules adds c's resource rules, without resource names (the engine
// matches names itself), to rules, each once.
func addRules(rules []admissionregistrationv1.RuleWithOperations, c *compile.Compiled) []admissionregistrationv1.RuleWithOperations {
	for _, named := range c.Criteria.Resources.ResourceRules {
		rules = addRule(rules, named.RuleWithOperations)
	}
	return rules
}

func addRule(rules []admissionregistrationv1.RuleWithOperations, rule admissionregistrationv1.RuleWithOperations) []admissionregistrationv1.RuleWithOperations {
	if slices.ContainsFunc(rules, func(r admissionregistrationv1.RuleWithOperations) bool { return equality.Semantic.DeepEqual(r, rule) }) {
		return rules
	}
	return append(rules, rule)
}

// serves tells whether the webhook group that sent req serves c: every
// policy serves a request of no group (offline, the audit) or of a group
// the engine does not know (a webhook the server rewrote since), so a
// request is never let through unchecked.
func (s *policySet) serves(req *Request, c *compile.Compiled) bool {
	return req.Group == "" || c.Group == req.Group || !s.groups[req.Group]
}
