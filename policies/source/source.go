// Package source says where the engine's world comes from: the kinds and
// their schemas, the namespaces, and the cluster's objects that parameters
// and the CEL functions read. Cluster is that world read from a cluster
// through the informer cache (serve, audit --live); Offline is the documents
// at hand (mutate, validate, policy test). It may import the policy model and
// the leaf packages (schema, inventory), never the engine.
package source

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/cel/openapi/resolver"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/doris-admission/doris-admission/policies/inventory"
)

// Config is what the engine needs from where it runs: a cluster's caches for
// `serve`, or what the input files say for the offline commands.
type Config struct {
	// Mapper maps kinds to resources, for type checking and offline requests.
	Mapper meta.RESTMapper
	// Schemas resolves the schema of a kind, for type checking.
	Schemas resolver.SchemaResolver
	// Namespaces and Client look up a request's namespace, for
	// namespaceSelector and namespaceObject; Client is asked on a cache miss.
	Namespaces corelisters.NamespaceLister
	Client     kubernetes.Interface
	// Objects are the cluster's objects: parameters, and what the CEL
	// functions look up.
	Objects ObjectSource
	// Namespace is the server's own, where the built-in policies' settings
	// are; default builtin.DefaultNamespace.
	Namespace string
	// Settings replace the embedded defaults of the built-in policies'
	// settings (serve --agent-image); the cluster's ConfigMap still wins.
	Settings map[string]string
	// NodePorts indexes the cluster's node ports, for inventory.nodePortOwners.
	NodePorts *inventory.NodePorts
}

// ObjectSource reads the cluster's objects: the parameter objects policies
// read as params, and what the CEL functions of ../library look up.
type ObjectSource interface {
	// List returns the objects of kind in namespace ("" for every namespace,
	// or a cluster-scoped kind) whose labels match selector. It never waits
	// for a cache to fill: what it cannot read yet is an error.
	List(ctx context.Context, kind schema.GroupVersionKind, namespace string, selector labels.Selector) ([]*unstructured.Unstructured, error)
	// Sync waits until List can answer for kind, or ctx ends, and says why
	// it cannot (not allowed to list the kind, no such kind).
	Sync(ctx context.Context, kind schema.GroupVersionKind) error
}

// Objects is an ObjectSource over objects at hand: the input documents of the
// offline commands, or defaults shipped with the binary.
type Objects []*unstructured.Unstructured

// List implements ObjectSource.
func (o Objects) List(_ context.Context, kind schema.GroupVersionKind, namespace string, selector labels.Selector) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, obj := range o {
		if obj.GroupVersionKind() == kind && (namespace == "" || obj.GetNamespace() == namespace) && selector.Matches(labels.Set(obj.GetLabels())) {
			out = append(out, obj)
		}
	}
	return out, nil
}

// Sync implements ObjectSource: the objects are at hand.
func (o Objects) Sync(context.Context, schema.GroupVersionKind) error { return nil }
