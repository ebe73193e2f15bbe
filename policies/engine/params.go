package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/doris-admission/doris-admission/policies/compile"
	"github.com/doris-admission/doris-admission/policies/jsonpatch"
	"github.com/doris-admission/doris-admission/policies/source"
)

// noParams is the parameter list of a policy without paramKind: one
// evaluation, with params null.
var noParams = []runtime.Object{nil}

// params returns the parameter objects c is evaluated with for req, one
// evaluation each, as a native binding's paramRef selects them. An empty
// list with no error means: no parameters, and parameterNotFoundAction Allow.
func (e *Engine) params(ctx context.Context, c *compile.Compiled, req *Request) ([]runtime.Object, error) {
	kind := c.Policy.ParamKind()
	if kind == nil {
		return noParams, nil
	}
	ref := c.Policy.ParamRef()
	if ref == nil {
		return nil, errors.New("spec.paramKind is set but spec.paramRef is not: say which object holds the parameters")
	}
	gv, err := schema.ParseGroupVersion(kind.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("spec.paramKind.apiVersion: %w", err)
	}
	gvk := gv.WithKind(kind.Kind)
	if e.objects == nil {
		return nil, fmt.Errorf("no %s parameter objects can be read here", gvk.Kind)
	}
	namespace, err := e.paramNamespace(gvk, ref, req)
	if err != nil {
		return nil, err
	}
	selector := labels.Everything()
	if ref.Selector != nil {
		if selector, err = metav1.LabelSelectorAsSelector(ref.Selector); err != nil {
			return nil, fmt.Errorf("spec.paramRef.selector: %w", err)
		}
	}
	found, err := e.listParams(ctx, gvk, namespace, selector)
	if err != nil {
		return nil, fmt.Errorf("reading %s parameters: %w", gvk.Kind, err)
	}
	var out []runtime.Object
	for _, obj := range found {
		if ref.Name == "" || obj.GetName() == ref.Name {
			out = append(out, asParams(obj))
		}
	}
	if len(out) == 0 {
		if ref.ParameterNotFoundAction != nil && *ref.ParameterNotFoundAction == admissionregistrationv1.AllowAction {
			return nil, nil
		}
		return nil, fmt.Errorf("no %s parameters found (paramRef name %q, namespace %q); create them or set paramRef.parameterNotFoundAction to Allow", gvk.Kind, ref.Name, namespace)
	}
	return out, nil
}

// paramsObject is a parameter object that gives the CEL activation its map
// as it is. The activation converts params on every evaluation; for an
// Unstructured it encodes it to JSON and decodes it again, which gives the
// same map when the map survives that round trip (see roundTrips).
type paramsObject struct {
	*unstructured.Unstructured
}

// ToUnstructured implements structured-merge-diff's UnstructuredConverter,
// which the CEL activation's conversion prefers over JSON.
func (p *paramsObject) ToUnstructured() any {
	return p.Object
}

// asParams wraps obj as a paramsObject when that changes nothing but the cost.
func asParams(obj *unstructured.Unstructured) runtime.Object {
	if obj.Object == nil || !jsonpatch.RoundTrips(obj.Object) {
		return obj
	}
	return &paramsObject{obj}
}

// listParams lists parameter objects, once per request for the same kind,
// namespace and selector (the built-in policies share their settings).
func (e *Engine) listParams(ctx context.Context, gvk schema.GroupVersionKind, namespace string, selector labels.Selector) ([]*unstructured.Unstructured, error) {
	memo := memoOf(ctx)
	if memo == nil {
		return e.objects.List(ctx, gvk, namespace, selector)
	}
	key := paramsKey{kind: gvk, namespace: namespace, selector: selector.String()}
	if read, ok := memo.params[key]; ok {
		return read.objects, read.err
	}
	found, err := e.objects.List(ctx, gvk, namespace, selector)
	if memo.params == nil {
		memo.params = map[paramsKey]paramsRead{}
	}
	memo.params[key] = paramsRead{found, err}
	return found, err
}

// paramNamespace is where the parameters are looked for: paramRef.namespace,
// else the request's namespace for a namespaced parameter kind.
func (e *Engine) paramNamespace(gvk schema.GroupVersionKind, ref *admissionregistrationv1.ParamRef, req *Request) (string, error) {
	if ref.Namespace != "" {
		return ref.Namespace, nil
	}
	mapping, err := e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return "", fmt.Errorf("unknown parameter kind %s: %w", gvk, err)
	}
	if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
		return "", nil
	}
	if req.GetNamespace() == "" {
		return "", fmt.Errorf("the parameters are namespaced (%s) but %s %s is not: set spec.paramRef.namespace", gvk.Kind, req.GetKind().Kind, req.GetName())
	}
	return req.GetNamespace(), nil
}

// CheckParams waits, until ctx ends, for the caches of the loaded policies'
// paramKinds to fill, and gives each policy whose paramKind the server
// cannot read a problem that says why: a load-time problem, where its
// requests fail at once per failurePolicy instead of waiting on a cache.
func (e *Engine) CheckParams(ctx context.Context, loaded []Loaded) {
	errs := map[schema.GroupVersionKind]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, l := range loaded {
		if kind := l.Policy.ParamKind(); kind != nil {
			gvk := schema.FromAPIVersionAndKind(kind.APIVersion, kind.Kind)
			if _, ok := errs[gvk]; !ok {
				errs[gvk] = nil
				wg.Go(func() {
					err := e.paramsReadable(ctx, gvk)
					mu.Lock()
					errs[gvk] = err
					mu.Unlock()
				})
			}
		}
	}
	wg.Wait()
	for i, l := range loaded {
		if kind := l.Policy.ParamKind(); kind != nil {
			if err := errs[schema.FromAPIVersionAndKind(kind.APIVersion, kind.Kind)]; err != nil {
				loaded[i].Problems = append(loaded[i].Problems, compile.ExpressionError{Field: "spec.paramKind",
					Message: fmt.Sprintf("the server cannot read %s objects, so every request this policy matches fails per its failurePolicy: %v; give the server's service account get, list and watch on them", kind.Kind, err)})
			}
		}
	}
}

// paramsReadable tells whether the cache of kind is filled: waiting for it
// the first time kind is a paramKind, at once after that (its informer goes
// on trying by itself), so a kind that cannot be read delays one load only.
func (e *Engine) paramsReadable(ctx context.Context, kind schema.GroupVersionKind) error {
	if _, seen := e.paramKinds.LoadOrStore(kind, true); seen {
		_, err := e.objects.List(ctx, kind, "", labels.Nothing())
		return err
	}
	return e.objects.Sync(ctx, kind)
}

// clusterObjects lets the CEL functions of ./library read the objects the
// engine sees. A CEL function is called without the request's context, so
// the read must not wait: ObjectSource.List never does (a cache that is not
// filled is an error, and the expression fails per failurePolicy).
type clusterObjects struct {
	source source.ObjectSource
}

func (c clusterObjects) List(kind schema.GroupVersionKind, namespace string) ([]map[string]any, error) {
	found, err := c.source.List(context.Background(), kind, namespace, labels.Everything())
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, len(found))
	for i, obj := range found {
		out[i] = obj.Object
	}
	return out, nil
}
