package audit

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/watch"
)

// flushEvery is how often changed reports are written: often enough to be
// current, rarely enough that a scan of thousands of objects writes each
// report a few times, not once per object.
const flushEvery = 2 * time.Second

// syncTimeout bounds the wait for a new kind's objects to be read.
const syncTimeout = 30 * time.Second

// Scanner evaluates the policies on the objects that already exist, from the
// informer cache, and keeps the PolicyReports and the policies' audit status
// current: at start, when the policies change, when an object changes, and
// every Interval. One replica scans: the one holding the lease. Losing the
// lease stops the scan, never the webhook.
type Scanner struct {
	Engine *engine.Engine
	// Cache holds the scanned objects; Client writes reports and statuses;
	// Reader reads the reports back without a cache.
	Cache  cache.Cache
	Client client.Client
	Reader client.Reader
	Mapper meta.RESTMapper
	// Kube and Namespace/LeaseName are for the lease.
	Kube      kubernetes.Interface
	Namespace string
	LeaseName string
	Identity  string
	// Interval between full scans; 0: only at start and on changes.
	Interval time.Duration
	// ExcludeNamespaces are never scanned, as the webhooks never see them.
	ExcludeNamespaces []string
	Log               logr.Logger

	changed chan struct{}
	mu      sync.Mutex
	queue   workqueue.TypedRateLimitingInterface[watch.Key] // nil while not leading
	objects map[watch.Key]objectResults
	dirty   map[string]bool // namespaces whose report changed; "" is the cluster report
	kinds   watch.Kinds
	counts  map[string]counts // last written audit status, by kind/name
}

// NeedLeaderElection is false: the scanner elects itself with its own
// lease, so that losing it stops the scan and not the whole server.
func (s *Scanner) NeedLeaderElection() bool { return false }

// PoliciesChanged asks for a full scan; it is the policy controller's OnLoad.
func (s *Scanner) PoliciesChanged(context.Context) error {
	s.init()
	select {
	case s.changed <- struct{}{}:
	default: // a scan is already asked for
	}
	return nil
}

func (s *Scanner) init() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{}, 1)
	}
}

// Start runs for leadership until ctx ends, scanning while it leads.
func (s *Scanner) Start(ctx context.Context) error {
	s.init()
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: s.Namespace, Name: s.LeaseName},
		Client:     s.Kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: s.Identity},
	}
	for ctx.Err() == nil {
		elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
			ReleaseOnCancel: true, Name: s.LeaseName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: s.lead,
				OnStoppedLeading: func() {
					s.Log.Info("stopped scanning: another replica holds the lease", "lease", s.Namespace+"/"+s.LeaseName)
				},
			},
		})
		if err != nil {
			return err
		}
		elector.Run(ctx)
	}
	return nil
}

// lead scans until ctx ends (leadership lost or shutdown).
func (s *Scanner) lead(ctx context.Context) {
	s.Log.Info("scanning existing objects", "lease", s.Namespace+"/"+s.LeaseName)
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[watch.Key]())
	s.mu.Lock()
	s.queue, s.objects, s.dirty, s.counts = queue, map[watch.Key]objectResults{}, map[string]bool{}, map[string]counts{}
	s.mu.Unlock()
	defer func() {
		queue.ShutDown()
		s.mu.Lock()
		s.queue = nil
		s.mu.Unlock()
	}()
	go s.work(ctx, queue)
	s.fullScan(ctx)
	var every <-chan time.Time
	if s.Interval > 0 {
		ticker := time.NewTicker(s.Interval)
		defer ticker.Stop()
		every = ticker.C
	}
	flush := time.NewTicker(flushEvery)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
			s.fullScan(ctx)
		case <-every:
			s.fullScan(ctx)
		case <-flush.C:
			if queue.Len() == 0 || s.pending() > 0 {
				s.flush(ctx)
			}
		}
	}
}

// pending is how many reports wait to be written.
func (s *Scanner) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.dirty)
}

// fullScan queues every object of every kind the policies match, and drops
// the results of kinds no policy matches any more.
func (s *Scanner) fullScan(ctx context.Context) {
	kinds := Kinds(s.Engine, s.Mapper)
	for _, gvk := range kinds {
		if err := s.watch(ctx, gvk); err != nil {
			s.Log.Info("objects of this kind are left out of the reports", "kind", gvk.String(), "reason", err.Error())
			continue
		}
		if err := watch.Existing(ctx, s.Cache, gvk, func(o *unstructured.Unstructured) { s.enqueue(gvk, o) }); err != nil {
			s.Log.Error(err, "listing from the cache failed", "kind", gvk.String())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range s.objects {
		if !slices.Contains(kinds, key.GVK) {
			delete(s.objects, key)
			s.dirty[key.Namespace] = true
		}
	}
}

// Kinds are the kinds the engine's policies name exactly; wildcard rules
// are left out, as they would take in every kind of the cluster.
func Kinds(e *engine.Engine, mapper meta.RESTMapper) []schema.GroupVersionKind {
	mutating, validating := e.Rules()
	return engine.RuleKinds(mapper, append(mutating, validating...))
}

// watch makes sure changes to objects of gvk are scanned as they happen.
func (s *Scanner) watch(ctx context.Context, gvk schema.GroupVersionKind) error {
	if err := s.mayWatch(ctx, gvk); err != nil {
		return err
	}
	return s.kinds.Watch(ctx, s.Cache, gvk, syncTimeout, func(o *unstructured.Unstructured) { s.enqueue(gvk, o) })
}

// mayWatch asks the API server whether the server may list and watch the
// objects of gvk: an informer that may not would retry and fail for ever.
func (s *Scanner) mayWatch(ctx context.Context, gvk schema.GroupVersionKind) error {
	mapping, err := s.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	for _, verb := range []string{"list", "watch"} {
		review, err := s.Kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: verb, Group: gvk.Group, Version: gvk.Version, Resource: mapping.Resource.Resource,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if !review.Status.Allowed {
			return fmt.Errorf("the server's account may not %s %s: grant it list and watch on %s to have them scanned", verb, mapping.Resource.GroupResource(), mapping.Resource.GroupResource())
		}
	}
	return nil
}

func (s *Scanner) enqueue(gvk schema.GroupVersionKind, obj *unstructured.Unstructured) {
	if slices.Contains(s.ExcludeNamespaces, obj.GetNamespace()) {
		return
	}
	s.mu.Lock()
	queue := s.queue
	s.mu.Unlock()
	if queue != nil {
		queue.Add(watch.KeyOf(gvk, obj))
	}
}

// work evaluates queued objects until the queue shuts down.
func (s *Scanner) work(ctx context.Context, queue workqueue.TypedRateLimitingInterface[watch.Key]) {
	watch.Work(queue, func(key watch.Key) error { return s.scan(ctx, key) }, func(key watch.Key, err error) {
		s.Log.Error(err, "scanning an object failed; trying again", "kind", key.GVK.Kind, "namespace", key.Namespace, "name", key.Name)
	})
}

// scan evaluates one object and records its results.
func (s *Scanner) scan(ctx context.Context, key watch.Key) error {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(key.GVK)
	err := s.Cache.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: key.Name}, obj)
	if apierrors.IsNotFound(err) {
		s.mu.Lock()
		if _, ok := s.objects[key]; ok {
			delete(s.objects, key)
			s.dirty[key.Namespace] = true
		}
		s.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	return s.record(ctx, key, obj)
}

// record evaluates obj and keeps its results, marking its report changed
// when they differ from the last ones.
func (s *Scanner) record(ctx context.Context, key watch.Key, obj *unstructured.Unstructured) error {
	found, err := s.Engine.Audit(ctx, obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	previous := s.objects[key]
	next := newResults(obj, found, previous.results, time.Now())
	if len(next.results) == 0 {
		if _, ok := s.objects[key]; ok {
			delete(s.objects, key)
			s.dirty[key.Namespace] = true
		}
		return nil
	}
	if !slices.EqualFunc(previous.results, next.results, Result.same) {
		s.dirty[key.Namespace] = true
	}
	s.objects[key] = next
	return nil
}
