// Package watch tells a function about every change to the objects of a
// kind, from a controller-runtime cache's informer: what the audit scanner
// and the generate controller run on. It imports only controller-runtime
// and client-go.
package watch

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
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

// Key names one object of a kind.
type Key struct {
	GVK             schema.GroupVersionKind
	Namespace, Name string
}

// KeyOf is the Key of obj, an object of gvk.
func KeyOf(gvk schema.GroupVersionKind, obj *unstructured.Unstructured) Key {
	return Key{GVK: gvk, Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// Kinds remembers which kinds are watched, so that each is watched once.
type Kinds struct {
	mu      sync.Mutex
	watched map[schema.GroupVersionKind]bool
}

// Watch is Changes, once per kind.
func (k *Kinds) Watch(ctx context.Context, c cache.Cache, gvk schema.GroupVersionKind, timeout time.Duration, onChange func(*unstructured.Unstructured)) error {
	k.mu.Lock()
	watched := k.watched[gvk]
	k.mu.Unlock()
	if watched {
		return nil
	}
	if err := Changes(ctx, c, gvk, timeout, onChange); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.watched == nil {
		k.watched = map[schema.GroupVersionKind]bool{}
	}
	k.watched[gvk] = true
	return nil
}

// Work hands each key of queue to handle until the queue shuts down; a key
// whose handling fails goes to failed and is tried again with backoff.
func Work(queue workqueue.TypedRateLimitingInterface[Key], handle func(Key) error, failed func(Key, error)) {
	for {
		key, shutdown := queue.Get()
		if shutdown {
			return
		}
		if err := handle(key); err != nil {
			failed(key, err)
			queue.AddRateLimited(key)
		} else {
			queue.Forget(key)
		}
		queue.Done(key)
	}
}
