package policies

import (
	"errors"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// criteria is a policy's matchConstraints with its selectors parsed once. It
// is what the Kubernetes policy matcher reads.
type criteria struct {
	resources         admissionregistrationv1.MatchResources
	namespaceSelector labels.Selector
	objectSelector    labels.Selector
	// names are the resources the rules may match.
	names resourceNames
}

// resourceNames are the resources (without subresource) some rules name; a
// request for any other resource matches none of them. It looks at the
// resource alone, so it never rules out what the matcher would match.
type resourceNames struct {
	// all is set when a rule names "*", or when there are no rules, which
	// the matcher takes as matching every resource.
	all   bool
	names map[string]bool
}

// namesOf collects the resources rules name.
func namesOf(rules []admissionregistrationv1.NamedRuleWithOperations) resourceNames {
	out := resourceNames{all: len(rules) == 0, names: map[string]bool{}}
	for _, rule := range rules {
		for _, resource := range rule.Resources {
			name, _, _ := strings.Cut(resource, "/")
			if name == "*" {
				out.all = true
			}
			out.names[name] = true
		}
	}
	return out
}

// mayMatch tells whether a request for resource may match.
func (n resourceNames) mayMatch(resource string) bool {
	return n.all || n.names[resource]
}

// unionResourceNames are the resources any of policies may match.
func unionResourceNames(policies []*compiled) resourceNames {
	out := resourceNames{names: map[string]bool{}}
	for _, c := range policies {
		out.all = out.all || c.criteria.names.all
		for name := range c.criteria.names.names {
			out.names[name] = true
		}
	}
	return out
}

// newCriteria parses match; a nil match matches nothing, as a native policy
// without matchConstraints cannot exist.
func newCriteria(match *admissionregistrationv1.MatchResources) (*criteria, error) {
	c := &criteria{namespaceSelector: labels.Nothing(), objectSelector: labels.Nothing()}
	if match == nil {
		// The object selector matches nothing: the policy never applies.
		return c, errors.New("matchConstraints is required: say which resources the policy applies to in resourceRules")
	}
	c.resources = *match
	c.names = namesOf(match.ResourceRules)
	if c.resources.MatchPolicy == nil {
		equivalent := admissionregistrationv1.Equivalent
		c.resources.MatchPolicy = &equivalent
	}
	var errs []error
	var err error
	if c.namespaceSelector, err = selector(match.NamespaceSelector); err != nil {
		errs = append(errs, err)
	}
	if c.objectSelector, err = selector(match.ObjectSelector); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// selector parses s; an absent selector selects everything.
func selector(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return labels.Everything(), nil
	}
	parsed, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return labels.Nothing(), err
	}
	return parsed, nil
}

func (c *criteria) GetParsedNamespaceSelector() (labels.Selector, error) {
	return c.namespaceSelector, nil
}

func (c *criteria) GetParsedObjectSelector() (labels.Selector, error) {
	return c.objectSelector, nil
}

func (c *criteria) GetMatchResources() admissionregistrationv1.MatchResources {
	return c.resources
}
