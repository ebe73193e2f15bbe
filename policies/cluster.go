package policies

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/cel/openapi/resolver"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	policyschema "github.com/doris-admission/doris-admission/policies/schema"
)

// ClusterConfig is the engine's configuration inside a cluster: the cluster's
// kinds (custom resources too), built-in schemas from the embedded snapshot
// and the others from the API server, and namespaces from the cache.
func ClusterConfig(cache client.Reader, kube kubernetes.Interface, mapper meta.RESTMapper, disco discovery.DiscoveryInterface) Config {
	return Config{
		Mapper:     mapper,
		Schemas:    policyschema.Chain{&policyschema.Builtin{}, &resolver.ClientDiscoveryResolver{Discovery: disco}},
		Namespaces: cachedNamespaces{cache},
		Client:     kube,
		Objects:    cachedObjects{cache},
	}
}

// cachedObjects reads parameter objects of any kind from the informer cache,
// which starts watching a kind the first time it is asked for. The objects
// are the cache's own, not copies: like the offline Objects, what List
// returns is only read (copy before changing it), so a request does not
// copy every object of a kind in a namespace.
type cachedObjects struct {
	cache client.Reader
}

func (c cachedObjects) List(ctx context.Context, kind schema.GroupVersionKind, namespace string, selector labels.Selector) ([]*unstructured.Unstructured, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(kind.GroupVersion().WithKind(kind.Kind + "List"))
	opts := []client.ListOption{client.MatchingLabelsSelector{Selector: selector}, client.UnsafeDisableDeepCopy}
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	if err := c.cache.List(ctx, list, opts...); err != nil {
		return nil, err
	}
	out := make([]*unstructured.Unstructured, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
		if out[i].GetKind() == "" {
			// The cache sets the kind on the copies it makes; set it on a
			// copy of this one, never on the cache's.
			out[i] = out[i].DeepCopy()
			out[i].SetGroupVersionKind(kind)
		}
	}
	return out, nil
}

// cachedNamespaces is a NamespaceLister over the manager's informer cache.
type cachedNamespaces struct {
	cache client.Reader
}

func (c cachedNamespaces) List(selector labels.Selector) ([]*corev1.Namespace, error) {
	var list corev1.NamespaceList
	if err := c.cache.List(context.Background(), &list, client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, err
	}
	out := make([]*corev1.Namespace, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

func (c cachedNamespaces) Get(name string) (*corev1.Namespace, error) {
	var ns corev1.Namespace
	if err := c.cache.Get(context.Background(), client.ObjectKey{Name: name}, &ns); err != nil {
		return nil, err
	}
	return &ns, nil
}
