package policies

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/doris-admission/doris-admission/policies/api/v1alpha1"
)

// Where a policy comes from (Policy.Origin), besides the file it was read from.
const (
	// OriginBuiltin marks the policies that ship inside the binary.
	OriginBuiltin = "built-in"
	// OriginCluster marks policies read from the cluster's policy objects.
	OriginCluster = "cluster"
)

// Kinds of policy.
const (
	KindMutating   = "MutatingPolicy"
	KindValidating = "ValidatingPolicy"
)

// Policy is a loaded policy and where it came from. Exactly one of Mutating
// and Validating is set.
type Policy struct {
	// Origin says where the policy came from: "built-in", a file, or "cluster".
	Origin     string
	Mutating   *v1alpha1.MutatingPolicy
	Validating *v1alpha1.ValidatingPolicy
}

// Name is the policy's metadata.name.
func (p Policy) Name() string {
	if p.Mutating != nil {
		return p.Mutating.Name
	}
	return p.Validating.Name
}

// Kind is MutatingPolicy or ValidatingPolicy.
func (p Policy) Kind() string {
	if p.Mutating != nil {
		return KindMutating
	}
	return KindValidating
}

// Generation is the policy's metadata.generation.
func (p Policy) Generation() int64 {
	if p.Mutating != nil {
		return p.Mutating.Generation
	}
	return p.Validating.Generation
}

// MatchConstraints is the policy's spec.matchConstraints.
func (p Policy) MatchConstraints() *admissionregistrationv1.MatchResources {
	if p.Mutating != nil {
		return p.Mutating.Spec.MatchConstraints
	}
	return p.Validating.Spec.MatchConstraints
}

// ParamKind is the policy's spec.paramKind.
func (p Policy) ParamKind() *admissionregistrationv1.ParamKind {
	if p.Mutating != nil {
		return p.Mutating.Spec.ParamKind
	}
	return p.Validating.Spec.ParamKind
}

// ParamRef is the policy's spec.paramRef.
func (p Policy) ParamRef() *admissionregistrationv1.ParamRef {
	if p.Mutating != nil {
		return p.Mutating.Spec.ParamRef
	}
	return p.Validating.Spec.ParamRef
}

// Compare orders policies as they are evaluated: built-in policies first,
// then by name and kind.
func Compare(a, b Policy) int {
	if ab, bb := a.Origin == OriginBuiltin, b.Origin == OriginBuiltin; ab != bb {
		if ab {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(a.Name(), b.Name()), cmp.Compare(a.Kind(), b.Kind()), cmp.Compare(a.Origin, b.Origin))
}

// IsPolicy tells whether gvk is one of the policy kinds.
func IsPolicy(gvk schema.GroupVersionKind) bool {
	return gvk.GroupVersion() == v1alpha1.GroupVersion && (gvk.Kind == KindMutating || gvk.Kind == KindValidating)
}

// PolicyFromDocument decodes a policy document strictly: an unknown field is
// an error that names it.
func PolicyFromDocument(doc Document) (Policy, error) {
	gvk := doc.Object.GroupVersionKind()
	if !IsPolicy(gvk) {
		return Policy{}, &DocumentError{doc.Origin, doc.Index, fmt.Errorf("%s %s is not a policy: want kind MutatingPolicy or ValidatingPolicy in %s", gvk.Kind, doc.Object.GetName(), v1alpha1.GroupVersion)}
	}
	data, err := json.Marshal(doc.Object.Object)
	if err != nil {
		return Policy{}, &DocumentError{doc.Origin, doc.Index, err}
	}
	p := Policy{Origin: doc.Origin}
	var target any
	if gvk.Kind == KindMutating {
		p.Mutating = &v1alpha1.MutatingPolicy{}
		target = p.Mutating
	} else {
		p.Validating = &v1alpha1.ValidatingPolicy{}
		target = p.Validating
	}
	if err := yaml.UnmarshalStrict(data, target); err != nil {
		return Policy{}, &DocumentError{doc.Origin, doc.Index, fmt.Errorf("%s %s: %w", gvk.Kind, doc.Object.GetName(), err)}
	}
	if p.Name() == "" {
		return Policy{}, &DocumentError{doc.Origin, doc.Index, fmt.Errorf("%s has no metadata.name", gvk.Kind)}
	}
	return p, nil
}

// ReadPolicies reads every policy under path (a file, a folder or "-").
// Documents that are not policies, or cannot be read, are reported in the
// joined error; the rest are returned.
func ReadPolicies(path string, stdin io.Reader) ([]Policy, error) {
	docs, readErr := ReadDocuments(path, stdin)
	errs := []error{readErr}
	var out []Policy
	for _, doc := range docs {
		p, err := PolicyFromDocument(doc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}
