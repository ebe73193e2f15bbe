package compile

import (
	"errors"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Criteria is a policy's matchConstraints with its selectors parsed once. It
// is what the Kubernetes policy matcher reads.
type Criteria struct {
	Resources         admissionregistrationv1.MatchResources
	namespaceSelector labels.Selector
	objectSelector    labels.Selector
	// Names are the resources the rules may match.
	Names ResourceNames
}

// ResourceNames are the resources (without subresource) some rules name; a
// request for any other resource matches none of them. It looks at the
// resource alone, so it never rules out what the matcher would match.
type ResourceNames struct {
	// all is set when a rule names "*", or when there are no rules, which
	// the matcher takes as matching every resource.
	all   bool
	names map[string]bool
}

// namesOf collects the resources rules name.
func namesOf(rules []admissionregistrationv1.NamedRuleWithOperations) ResourceNames {
	out := ResourceNames{all: len(rules) == 0, names: map[string]bool{}}
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

// MayMatch tells whether a request for resource may match.
func (n ResourceNames) MayMatch(resource string) bool {
	return n.all || n.names[resource]
}

// UnionResourceNames are the resources any of policies may match.
func UnionResourceNames(list []*Compiled) ResourceNames {
	out := ResourceNames{names: map[string]bool{}}
	for _, c := range list {
		out.all = out.all || c.Criteria.Names.all
		for name := range c.Criteria.Names.names {
			out.names[name] = true
		}
	}
	return out
}

// newCriteria parses match; a nil match matches nothing, as a native policy
// without matchConstraints cannot exist.
func newCriteria(match *admissionregistrationv1.MatchResources) (*Criteria, error) {
	c := &Criteria{namespaceSelector: labels.Nothing(), objectSelector: labels.Nothing()}
	if match == nil {
		// The object selector matches nothing: the policy never applies.
		return c, errors.New("matchConstraints is required: say which resources the policy applies to in resourceRules")
	}
	c.Resources = *match
	c.Names = namesOf(match.ResourceRules)
	if c.Resources.MatchPolicy == nil {
		equivalent := admissionregistrationv1.Equivalent
		c.Resources.MatchPolicy = &equivalent
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

func (c *Criteria) GetParsedNamespaceSelector() (labels.Selector, error) {
	return c.namespaceSelector, nil
}

func (c *Criteria) GetParsedObjectSelector() (labels.Selector, error) {
	return c.objectSelector, nil
}

func (c *Criteria) GetMatchResources() admissionregistrationv1.MatchResources {
	return c.Resources
}
