package source

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/cel/openapi/resolver"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	policyschema "github.com/doris-admission/doris-admission/policies/schema"
)

// Cluster is the engine's configuration inside a cluster: the cluster's
// kinds (custom resources too), built-in schemas from the embedded snapshot
// and the others from the API server, and objects and namespaces from the
// informer cache, whose watch errors errs keeps (see CacheErrors).
func Cluster(informers cache.Cache, kube kubernetes.Interface, mapper meta.RESTMapper, disco discovery.DiscoveryInterface, errs *CacheErrors) Config {
	return Config{
		Mapper:     mapper,
		Schemas:    policyschema.Chain{&policyschema.Builtin{}, &resolver.ClientDiscoveryResolver{Discovery: disco}},
		Namespaces: cachedNamespaces{informers},
		Client:     kube,
		Objects:    cachedObjects{informers: informers, errs: errs, synced: &sync.Map{}},
	}
}

// CacheErrors keeps the last error each informer of the server's cache got
// from the API server (not allowed to list, no such kind), so a read of a
// kind whose cache never filled says why. Handle is the cache's
// DefaultWatchErrorHandler.
type CacheErrors struct {
	mu sync.Mutex
	// last is by the informer's type description: the GroupVersionKind
	// for the unstructured informers cachedObjects reads.
	last map[string]error
}

// Handle records err, then does what client-go does by default.
func (c *CacheErrors) Handle(ctx context.Context, r *toolscache.Reflector, err error) {
	c.mu.Lock()
	if c.last == nil {
		c.last = map[string]error{}
	}
	c.last[r.TypeDescription()] = err
	c.mu.Unlock()
	toolscache.DefaultWatchErrorHandler(ctx, r, err)
}

// of is the last error the informer of kind got, or nil.
func (c *CacheErrors) of(kind schema.GroupVersionKind) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last[kind.String()]
}

// cachedObjects reads objects of any kind from the informer cache, which
// starts watching a kind the first time it is asked for. List never waits
// for a cache to fill: a kind not synced yet is an error (the request fails
// per failurePolicy), never an empty list; Sync waits. The objects are the
// cache's own, not copies: like the offline Objects, what List returns is
// only read (copy before changing it), so a request does not copy every
// object of a kind in a namespace.
type cachedObjects struct {
	informers cache.Cache
	errs      *CacheErrors
	// synced are the kinds whose cache has filled: an informer stays
	// synced, so a read of them skips the informer lookup.
	synced *sync.Map
}

func (c cachedObjects) List(ctx context.Context, kind schema.GroupVersionKind, namespace string, selector labels.Selector) ([]*unstructured.Unstructured, error) {
	if err := c.ensureSynced(ctx, kind, false); err != nil {
		return nil, err
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(kind.GroupVersion().WithKind(kind.Kind + "List"))
	opts := []client.ListOption{client.MatchingLabelsSelector{Selector: selector}, client.UnsafeDisableDeepCopy}
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	if err := c.informers.List(ctx, list, opts...); err != nil {
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

func (c cachedObjects) Sync(ctx context.Context, kind schema.GroupVersionKind) error {
	return c.ensureSynced(ctx, kind, true)
}

// ensureSynced makes sure the cache of kind is filled, waiting for it until ctx
// ends when wait is set, else failing at once; the error says why it is not.
func (c cachedObjects) ensureSynced(ctx context.Context, kind schema.GroupVersionKind, wait bool) error {
	if _, ok := c.synced.Load(kind); ok {
		return nil
	}
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(kind)
	informer, err := c.informers.GetInformer(ctx, obj, cache.BlockUntilSynced(wait))
	if err == nil && informer.HasSynced() {
		c.synced.Store(kind, true)
		return nil
	}
	if err == nil {
		err = fmt.Errorf("the server's cache of %s objects is not filled yet", kind.Kind)
	}
	if cause := c.errs.of(kind); cause != nil {
		err = fmt.Errorf("%w; the API server said: %v", err, cause)
	}
	return err
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
