package schema

import (
	"errors"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/cel/openapi/resolver"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// Chain asks each resolver in turn and returns the first schema found.
type Chain []resolver.SchemaResolver

// ResolveSchema implements resolver.SchemaResolver.
func (c Chain) ResolveSchema(gvk schema.GroupVersionKind) (*spec.Schema, error) {
	for _, r := range c {
		s, err := r.ResolveSchema(gvk)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, resolver.ErrSchemaNotFound) {
			return nil, err
		}
	}
	return nil, resolver.ErrSchemaNotFound
}
