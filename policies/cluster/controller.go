package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/api/v1alpha1"
	"github.com/doris-admission/doris-admission/policies/compile"
	"github.com/doris-admission/doris-admission/policies/engine"
)

// Controller keeps the engine's policies equal to the static ones (built-in
// and files) plus the policy objects in the cluster, and reports each
// object's state in its status.
type Controller struct {
	// Client reads policies from the informer cache and writes their status.
	Client client.Client
	Engine *engine.Engine
	// Static are the built-in and file policies, loaded with the cluster's.
	Static []policies.Policy
	// OnLoad runs after every load, e.g. to update the webhook configurations.
	OnLoad func(ctx context.Context) error
	// AlsoWatch are more objects whose changes trigger a reload (and OnLoad).
	AlsoWatch []client.Object

	loaded atomic.Bool
}

// paramSyncTimeout bounds the wait, at load, for the caches of the
// policies' paramKinds: a kind the server may not list never fills.
const paramSyncTimeout = 15 * time.Second

// paramRecheck is how soon the policies are loaded again while a paramKind
// cannot be read.
const paramRecheck = time.Minute

// reloadAll is the one work item: any policy change reloads the whole set,
// so the engine always holds one consistent snapshot.
var reloadAll = reconcile.Request{NamespacedName: types.NamespacedName{Name: "policies"}}

// SetupWithManager watches both policy kinds.
func (c *Controller) SetupWithManager(mgr ctrl.Manager) error {
	toAll := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{reloadAll}
	})
	// One event at start loads the policies even when the cluster has none.
	start := make(chan event.GenericEvent, 1)
	start <- event.GenericEvent{Object: &v1alpha1.ValidatingPolicy{}}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("policies").
		WatchesRawSource(source.Channel(start, toAll)).
		Watches(&v1alpha1.ValidatingPolicy{}, toAll).
		Watches(&v1alpha1.MutatingPolicy{}, toAll)
	for _, obj := range c.AlsoWatch {
		b = b.Watches(obj, toAll)
	}
	return b.Complete(c)
}

// Reconcile reloads every policy and updates the status of the cluster's.
func (c *Controller) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	if !c.loaded.Load() {
		if err := c.Engine.WarmUp(ctx); err != nil {
			return reconcile.Result{}, err
		}
	}
	var validatingList v1alpha1.ValidatingPolicyList
	var mutatingList v1alpha1.MutatingPolicyList
	if err := c.Client.List(ctx, &validatingList); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing ValidatingPolicies: %w", err)
	}
	if err := c.Client.List(ctx, &mutatingList); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing MutatingPolicies: %w", err)
	}
	all := append([]policies.Policy{}, c.Static...)
	for i := range validatingList.Items {
		all = append(all, policies.Policy{Origin: policies.OriginCluster, Validating: &validatingList.Items[i]})
	}
	for i := range mutatingList.Items {
		all = append(all, policies.Policy{Origin: policies.OriginCluster, Mutating: &mutatingList.Items[i]})
	}
	loaded := c.Engine.Load(all)
	paramsCtx, cancel := context.WithTimeout(ctx, paramSyncTimeout)
	c.Engine.CheckParams(paramsCtx, loaded)
	cancel()
	engine.RecordProblems(loaded)
	c.loaded.Store(true)
	log.FromContext(ctx).Info("loaded policies", "count", len(loaded), "fromCluster", len(all)-len(c.Static))
	var errs []error
	if c.OnLoad != nil {
		errs = append(errs, c.OnLoad(ctx))
	}
	var result reconcile.Result
	for _, l := range loaded {
		if l.Origin == policies.OriginCluster {
			errs = append(errs, c.updateStatus(ctx, l))
		}
		if slices.ContainsFunc(l.Problems, func(p compile.ExpressionError) bool { return p.Field == "spec.paramKind" }) {
			// Its informer goes on trying: look again, so the problem goes
			// once the server may read the kind (RBAC granted, CRD installed).
			result.RequeueAfter = paramRecheck
		}
	}
	return result, errors.Join(errs...)
}

// updateStatus writes the Ready condition and the expression problems of a
// cluster policy, when they changed.
func (c *Controller) updateStatus(ctx context.Context, l engine.Loaded) error {
	var obj client.Object
	var status *v1alpha1.PolicyStatus
	if l.Mutating != nil {
		obj, status = l.Mutating.DeepCopy(), &l.Mutating.Status
	} else {
		obj, status = l.Validating.DeepCopy(), &l.Validating.Status
	}
	next := statusFor(l, obj.GetGeneration(), status.Conditions)
	next.Audit = status.Audit // the background scan's
	if equality.Semantic.DeepEqual(*status, next) {
		return nil
	}
	// A merge patch: the background scan writes status.audit alongside.
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	switch o := obj.(type) {
	case *v1alpha1.MutatingPolicy:
		o.Status = next
	case *v1alpha1.ValidatingPolicy:
		o.Status = next
	}
	if err := c.Client.Status().Patch(ctx, obj, patch); err != nil {
		return fmt.Errorf("updating the status of %s %s: %w", l.Kind(), l.Name(), err)
	}
	return nil
}

// statusFor computes a policy's status from what the engine found.
func statusFor(l engine.Loaded, generation int64, conditions []metav1.Condition) v1alpha1.PolicyStatus {
	status := v1alpha1.PolicyStatus{ObservedGeneration: generation, Conditions: append([]metav1.Condition{}, conditions...)}
	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Compiled", ObservedGeneration: generation,
		Message: "every expression compiled; the policy is enforced"}
	if len(l.Problems) > 0 {
		ready.Status, ready.Reason = metav1.ConditionFalse, "Problems"
		ready.Message = fmt.Sprintf("%d problems (expressions that do not compile, a paramKind the server cannot read); the requests they meet fail per failurePolicy. First: %s: %s", len(l.Problems), l.Problems[0].Field, l.Problems[0].Summary())
		status.TypeChecking = &admissionregistrationv1.TypeChecking{}
		for _, problem := range l.Problems {
			status.TypeChecking.ExpressionWarnings = append(status.TypeChecking.ExpressionWarnings,
				admissionregistrationv1.ExpressionWarning{FieldRef: problem.Field, Warning: problem.Summary()})
		}
	}
	meta.SetStatusCondition(&status.Conditions, ready)
	return status
}

// Ready fails until the first load, so the server does not answer with an
// empty policy set while its caches fill.
func (c *Controller) Ready(*http.Request) error {
	if !c.loaded.Load() {
		return errors.New("policies not loaded yet")
	}
	return nil
}
