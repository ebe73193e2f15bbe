package policies

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	group := func(c *compiled) *WebhookGroup {
		g, ok := byID[c.group]
		if !ok {
			m := c.matchConstraints()
			g = &WebhookGroup{ID: c.group, FailurePolicy: c.failure, NamespaceSelector: narrowing(m.NamespaceSelector), ObjectSelector: narrowing(m.ObjectSelector)}
			byID[c.group] = g
		}
		return g
	}
	for _, c := range set.mutating {
		if c.matchConstraints() == nil {
			continue // matches nothing
		}
		g := group(c)
		g.Mutating = addRules(g.Mutating, c)
		g.Reinvoke = g.Reinvoke || c.Mutating.Spec.ReinvocationPolicy == admissionregistrationv1.IfNeededReinvocationPolicy
	}
	for _, c := range set.validating {
		if c.matchConstraints() == nil {
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

// groupOf is the ID of the group that serves a policy: its failurePolicy,
// and a hash of its selectors when it has any.
func groupOf(p Policy, failure admissionregistrationv1.FailurePolicyType) string {
	id := strings.ToLower(string(failure))
	m := p.matchConstraints()
	if m == nil {
		return id
	}
	namespaces, objects := narrowing(m.NamespaceSelector), narrowing(m.ObjectSelector)
	if namespaces == nil && objects == nil {
		return id
	}
	data, _ := json.Marshal([]*metav1.LabelSelector{namespaces, objects})
	sum := sha256.Sum256(data)
	return id + "-" + hex.EncodeToString(sum[:5])
}

// narrowing is s, or nil when it selects everything.
func narrowing(s *metav1.LabelSelector) *metav1.LabelSelector {
	if s == nil || (len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0) {
		return nil
	}
	return s
}

// addRules adds c's resource rules, without resource names (the engine
// matches names itself), to rules, each once.
func addRules(rules []admissionregistrationv1.RuleWithOperations, c *compiled) []admissionregistrationv1.RuleWithOperations {
	for _, named := range c.criteria.resources.ResourceRules {
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
func (s *policySet) serves(req *Request, c *compiled) bool {
	return req.Group == "" || c.group == req.Group || !s.groups[req.Group]
}
