// Package watch tells a function about every change to the objects of a
// kind, from a controller-runtime cache's informer: what the audit scanner
// and the generate controller run on. It imports only controller-runtime
// and client-go.
package watch

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// Changes calls onChange with each object of gvk that is added, updated or
// deleted, once the informer has read them all. An informer that cannot list
// (no permission) never syncs: after timeout, Changes gives up on the kind
// and says so.
func Changes(ctx context.Context, c cache.Cache, gvk schema.GroupVersionKind, timeout time.Duration, onChange func(*unstructured.Unstructured)) error {
	probe := &unstructured.Unstructured{}
	probe.SetGroupVersionKind(gvk)
	informer, err := c.GetInformer(ctx, probe, cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	synced, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !toolscache.WaitForCacheSync(synced.Done(), informer.HasSynced) {
		return fmt.Errorf("the objects of %s could not be read within %s; check that the server may list and watch them", gvk.Kind, timeout)
	}
	handle := func(obj any) {
		if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = tombstone.Obj
		}
		if o, ok := obj.(*unstructured.Unstructured); ok {
			onChange(o)
		}
	}
	_, err = informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, obj any) { handle(obj) },
		DeleteFunc: handle,
	})
	return err
}

// Existing calls each with every object of gvk in the cache.
func Existing(ctx context.Context, c cache.Cache, gvk schema.GroupVersionKind, each func(*unstructured.Unstructured)) error {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err := c.List(ctx, list); err != nil {
		return err
	}
	for i := range list.Items {
		each(&list.Items[i])
	}
	return nil
}
