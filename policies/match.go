package policies

import (
	"errors"

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
}

// newCriteria parses match; a nil match matches nothing, as a native policy
// without matchConstraints cannot exist.
func newCriteria(match *admissionregistrationv1.MatchResources) (*criteria, error) {
	c := &criteria{namespaceSelector: labels.Nothing(), objectSelector: labels.Nothing()}
	if match == nil {
		return c, errors.New("matchConstraints is required: say which resources the policy applies to in resourceRules")
	}
	c.resources = *match
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
