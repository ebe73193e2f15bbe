package schema

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/cel/openapi/resolver"
)

func TestBuiltinResolvesNestedFields(t *testing.T) {
	var b Builtin
	s, err := b.ResolveSchema(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"})
	if err != nil {
		t.Fatal(err)
	}
	podSpec := s.Properties["spec"].Properties["template"].Properties["spec"]
	if _, ok := podSpec.Properties["terminationGracePeriodSeconds"]; !ok {
		t.Errorf("StatefulSet schema lacks spec.template.spec.terminationGracePeriodSeconds")
	}
	if _, ok := s.Properties["spec"].Properties["replica"]; ok {
		t.Errorf("StatefulSet schema has a field spec.replica that does not exist")
	}
}

func TestBuiltinUnknownKind(t *testing.T) {
	var b Builtin
	for _, gvk := range []schema.GroupVersionKind{
		{Group: "apps", Version: "v1", Kind: "Nope"},
		{Group: "example.com", Version: "v1", Kind: "Widget"},
	} {
		if _, err := b.ResolveSchema(gvk); !errors.Is(err, resolver.ErrSchemaNotFound) {
			t.Errorf("%s: got %v, want ErrSchemaNotFound", gvk, err)
		}
	}
}

func TestBuiltinRESTMapper(t *testing.T) {
	m, err := BuiltinRESTMapper().RESTMapping(schema.GroupKind{Group: "networking.k8s.io", Kind: "NetworkPolicy"}, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Resource.Resource != "networkpolicies" || m.Scope.Name() != "namespace" {
		t.Errorf("NetworkPolicy maps to %s (%s), want networkpolicies (namespace)", m.Resource, m.Scope.Name())
	}
	kind, err := BuiltinRESTMapper().KindFor(schema.GroupVersionResource{Version: "v1", Resource: "endpoints"})
	if err != nil || kind.Kind != "Endpoints" {
		t.Errorf("endpoints maps to %v, %v; want Endpoints", kind, err)
	}
}
