package audit

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/api/v1alpha1"
	"github.com/doris-admission/doris-admission/policies/engine"
)

// counts are a policy's results among the existing objects.
type counts struct {
	violations, warnings, passes int32
}

// flush writes the reports that changed, then the policies' audit status.
func (s *Scanner) flush(ctx context.Context) {
	s.mu.Lock()
	byNamespace := map[string][]objectResults{}
	for namespace := range s.dirty {
		byNamespace[namespace] = nil
	}
	for key, o := range s.objects {
		if _, ok := byNamespace[key.Namespace]; ok {
			byNamespace[key.Namespace] = append(byNamespace[key.Namespace], o)
		}
	}
	s.dirty = map[string]bool{}
	tally := s.tally()
	s.mu.Unlock()
	for _, namespace := range slices.Sorted(maps.Keys(byNamespace)) {
		if err := s.writeReport(ctx, namespace, byNamespace[namespace]); err != nil {
			s.Log.Error(err, "writing the policy report failed; trying again", "namespace", namespace)
			s.mu.Lock()
			s.dirty[namespace] = true
			s.mu.Unlock()
		}
	}
	if err := s.writeStatus(ctx, tally); err != nil {
		s.Log.Error(err, "writing the policies' audit status failed; trying again")
	}
}

// tally counts the results per policy; the caller holds s.mu.
func (s *Scanner) tally() map[string]counts {
	out := map[string]counts{}
	for _, o := range s.objects {
		for _, r := range o.results {
			key := r.Properties["kind"] + "/" + r.Policy
			c := out[key]
			switch r.Result {
			case engine.ResultFail, engine.ResultError:
				c.violations++
			case engine.ResultWarn:
				c.warnings++
			case engine.ResultPass:
				c.passes++
			}
			out[key] = c
		}
	}
	return out
}

// writeReport makes the namespace's report (the cluster report for "") hold
// exactly these results: created, updated in place, or deleted when empty.
func (s *Scanner) writeReport(ctx context.Context, namespace string, objects []objectResults) error {
	want := report(namespace, objects)
	current := &unstructured.Unstructured{}
	current.SetGroupVersionKind(want.GroupVersionKind())
	err := s.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ReportName}, current)
	empty := len(objects) == 0
	switch {
	case apierrors.IsNotFound(err) && empty:
		return nil
	case apierrors.IsNotFound(err):
		return s.Client.Create(ctx, want)
	case err != nil:
		return err
	case empty:
		return client.IgnoreNotFound(s.Client.Delete(ctx, current))
	}
	if equality.Semantic.DeepEqual(current.Object["results"], want.Object["results"]) && equality.Semantic.DeepEqual(current.Object["summary"], want.Object["summary"]) {
		return nil
	}
	current.Object["results"], current.Object["summary"] = want.Object["results"], want.Object["summary"]
	return s.Client.Update(ctx, current)
}

// writeStatus puts each cluster policy's counts in its status, where they changed.
func (s *Scanner) writeStatus(ctx context.Context, tally map[string]counts) error {
	var validating v1alpha1.ValidatingPolicyList
	var mutating v1alpha1.MutatingPolicyList
	if err := s.Client.List(ctx, &validating); err != nil {
		return err
	}
	if err := s.Client.List(ctx, &mutating); err != nil {
		return err
	}
	var objects []client.Object
	for i := range validating.Items {
		objects = append(objects, &validating.Items[i])
	}
	for i := range mutating.Items {
		objects = append(objects, &mutating.Items[i])
	}
	now := metav1.NewTime(time.Now())
	for _, obj := range objects {
		var kind string
		var status *v1alpha1.PolicyStatus
		switch p := obj.(type) {
		case *v1alpha1.ValidatingPolicy:
			kind, status = policies.KindValidating, &p.Status
		case *v1alpha1.MutatingPolicy:
			kind, status = policies.KindMutating, &p.Status
		}
		key := kind + "/" + obj.GetName()
		c := tally[key]
		if last, ok := s.counts[key]; ok && last == c && status.Audit != nil {
			continue
		}
		patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
		status.Audit = &v1alpha1.AuditStatus{Violations: c.violations, Warnings: c.warnings, Passes: c.passes, LastScan: now}
		if err := s.Client.Status().Patch(ctx, obj, patch); apierrors.IsNotFound(err) {
			continue // deleted since the list
		} else if err != nil {
			return fmt.Errorf("%s %s: %w", kind, obj.GetName(), err)
		}
		s.mu.Lock()
		s.counts[key] = c
		s.mu.Unlock()
	}
	return nil
}
