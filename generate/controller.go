// Package generate creates the objects the policies' generate asks for: when
// an object a generating policy matches appears or changes, each object its
// generate expressions give is created if none of that kind and name exists.
// An existing object is never changed or deleted; a generated one goes with
// the object that owns it, through Kubernetes' garbage collector.
//
// It imports the policy engine (policies) and controller-runtime's cache and
// client; the server (cmd/doris-admission) runs it.
package generate

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/watch"
)

// syncTimeout bounds the wait for a kind's first list: an informer the
// server may not list with never syncs.
const syncTimeout = 30 * time.Second

// Controller watches the kinds generating policies match and creates what
// they generate. Every replica runs it: a create that another replica made
// first ends in AlreadyExists, which is success.
type Controller struct {
	Engine *engine.Engine
	// Cache holds the watched objects; Client reads and creates generated ones.
	Cache  cache.Cache
	Client client.Client
	Mapper meta.RESTMapper
	// ExcludeNamespaces are left alone, as the webhooks leave them alone.
	ExcludeNamespaces []string
	Log               logr.Logger

	mu      sync.Mutex
	queue   workqueue.TypedRateLimitingInterface[watch.Key]
	kinds   watch.Kinds
	changed chan struct{}
}

func (c *Controller) init() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.changed == nil {
		c.changed = make(chan struct{}, 1)
		c.queue = workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[watch.Key]())
	}
}

// NeedLeaderElection is false: creating what exists already is harmless.
func (c *Controller) NeedLeaderElection() bool { return false }

// PoliciesChanged makes the controller watch the kinds the policies now
// generate for; it is called by the policy controller after each load.
func (c *Controller) PoliciesChanged(context.Context) error {
	c.init()
	select {
	case c.changed <- struct{}{}:
	default:
	}
	return nil
}

// Start watches and generates until ctx ends.
func (c *Controller) Start(ctx context.Context) error {
	c.init()
	go func() {
		<-ctx.Done()
		c.queue.ShutDown()
	}()
	go c.work(ctx)
	c.watchAll(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.changed:
			c.watchAll(ctx)
		}
	}
}

// watchAll watches every kind a generating policy matches, and queues the
// objects it has already: a new policy applies to what exists too.
func (c *Controller) watchAll(ctx context.Context) {
	for _, gvk := range engine.RuleKinds(c.Mapper, c.Engine.GeneratingRules()) {
		if err := c.watch(ctx, gvk); err != nil {
			c.Log.Error(err, "objects of this kind get nothing generated until the server may list and watch them", "kind", gvk.String())
			continue
		}
		if err := watch.Existing(ctx, c.Cache, gvk, func(o *unstructured.Unstructured) { c.enqueue(gvk, o) }); err != nil {
			c.Log.Error(err, "listing objects to generate for", "kind", gvk.String())
		}
	}
}

// watch queues every change to an object of gvk.
func (c *Controller) watch(ctx context.Context, gvk schema.GroupVersionKind) error {
	return c.kinds.Watch(ctx, c.Cache, gvk, syncTimeout, func(o *unstructured.Unstructured) { c.enqueue(gvk, o) })
}

func (c *Controller) enqueue(gvk schema.GroupVersionKind, obj *unstructured.Unstructured) {
	if !slices.Contains(c.ExcludeNamespaces, obj.GetNamespace()) {
		c.queue.Add(watch.KeyOf(gvk, obj))
	}
}

// work generates for queued objects until the queue shuts down; a failure is
// retried with backoff.
func (c *Controller) work(ctx context.Context) {
	watch.Work(c.queue, func(key watch.Key) error { return c.generate(ctx, key) }, func(key watch.Key, err error) {
		c.Log.Error(err, "generating failed; trying again", "kind", key.GVK.Kind, "namespace", key.Namespace, "name", key.Name)
	})
}

// generate creates what the policies generate for one object, if missing.
func (c *Controller) generate(ctx context.Context, key watch.Key) error {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(key.GVK)
	err := c.Cache.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: key.Name}, obj)
	if apierrors.IsNotFound(err) || err == nil && obj.GetDeletionTimestamp() != nil {
		return nil
	}
	if err != nil {
		return err
	}
	generated, errs := c.Engine.Generate(ctx, obj)
	for _, err := range errs {
		// A policy that cannot be evaluated on this object will not do better
		// on a retry: report it, as the audit does.
		c.Log.Error(err, "a generating policy failed on this object", "kind", key.GVK.Kind, "namespace", key.Namespace, "name", key.Name)
	}
	var failed []error
	for _, g := range generated {
		if err := c.create(ctx, obj, g); err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d generated objects could not be created: %w", len(failed), len(generated), failed[0])
	}
	return nil
}

// create creates g's object unless one of its kind and name exists.
func (c *Controller) create(ctx context.Context, owner *unstructured.Unstructured, g engine.Generated) error {
	existing := &unstructured.Unstructured{}
	existing.SetGroupVersionKind(g.Object.GroupVersionKind())
	err := c.Client.Get(ctx, client.ObjectKeyFromObject(g.Object), existing)
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading %s %s/%s: %w", g.Object.GetKind(), g.Object.GetNamespace(), g.Object.GetName(), err)
	}
	err = c.Client.Create(ctx, g.Object)
	switch {
	case apierrors.IsAlreadyExists(err):
		return nil
	case err != nil:
		return fmt.Errorf("creating %s %s/%s for %s %s (policy %s, generate %s): %w", g.Object.GetKind(), g.Object.GetNamespace(), g.Object.GetName(),
			owner.GetKind(), owner.GetName(), g.Policy, g.Generation, err)
	}
	c.Log.Info("created a generated object", "kind", g.Object.GetKind(), "namespace", g.Object.GetNamespace(), "name", g.Object.GetName(),
		"for", owner.GetKind()+" "+owner.GetName(), "policy", g.Policy, "generate", g.Generation)
	return nil
}
