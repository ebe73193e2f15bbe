package policies

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	apiservercel "k8s.io/apiserver/pkg/cel"
)

// RequestCostBudget is the CEL cost all policies together may spend on one
// admission request. Kubernetes gives each policy binding this much; here one
// request gets it, so many policies cannot add up to a stall.
const RequestCostBudget = celconfig.RuntimeCELCostBudget

// requestBudget is the CEL cost left for one request.
type requestBudget struct {
	left atomic.Int64
}

type budgetKey struct{}

// WithRequestBudget gives ctx a full request budget unless it has one; every
// evaluation under ctx shares it, so the mutating and validating policies of
// one webhook call spend from one budget. What every policy of the request
// reads the same (its namespace, the parameter objects) is read once under
// ctx too.
func WithRequestBudget(ctx context.Context) context.Context {
	if ctx.Value(budgetKey{}) != nil {
		return ctx
	}
	b := &requestBudget{}
	b.left.Store(RequestCostBudget)
	return context.WithValue(context.WithValue(ctx, budgetKey{}, b), memoKey{}, &requestMemo{})
}

// requestMemo keeps what the policies of one request read from the cluster,
// so each is read once. The policies of a request are evaluated one after
// the other, so it needs no lock.
type requestMemo struct {
	namespaceRead bool
	namespace     *corev1.Namespace
	namespaceErr  error
	params        map[paramsKey]paramsRead
	// roundTripping says which objects come back unchanged from a JSON
	// round trip, as the mutations' objects are checked.
	roundTripping map[*unstructured.Unstructured]bool
}

// paramsKey is one read of parameter objects.
type paramsKey struct {
	kind      schema.GroupVersionKind
	namespace string
	selector  string
}

type paramsRead struct {
	objects []*unstructured.Unstructured
	err     error
}

type memoKey struct{}

// memoOf is ctx's request memo, nil when it has none.
func memoOf(ctx context.Context) *requestMemo {
	m, _ := ctx.Value(memoKey{}).(*requestMemo)
	return m
}

// grant gives an evaluation that asks for budget what the request has left of
// it, and returns a function that books what the evaluation spent and
// translates its result back into the budget it asked for.
func grant(ctx context.Context, budget int64) (int64, func(remaining int64, err error) (int64, error)) {
	b, _ := ctx.Value(budgetKey{}).(*requestBudget)
	if b == nil {
		return budget, func(remaining int64, err error) (int64, error) { return remaining, err }
	}
	given := min(budget, b.left.Load())
	return given, func(remaining int64, err error) (int64, error) {
		if err != nil || remaining < 0 {
			if !errors.Is(err, apiservercel.ErrOutOfBudget) {
				return -1, err
			}
			if given < budget {
				err = &apiservercel.Error{
					Type:   apiservercel.ErrorTypeInvalid,
					Detail: fmt.Sprintf("the request's CEL cost budget of %s is spent (the policies before this one used %s); no further expressions run for this request", FormatCost(RequestCostBudget), FormatCost(uint64(RequestCostBudget-given))),
					Cause:  apiservercel.ErrOutOfBudget,
				}
			}
			b.left.Add(-given)
			return -1, err
		}
		b.left.Add(remaining - given)
		return budget - (given - remaining), nil
	}
}

// budgetedCondition charges a condition evaluator's cost to the request.
type budgetedCondition struct {
	plugincel.ConditionEvaluator
}

func (c budgetedCondition) ForInput(ctx context.Context, attr *admission.VersionedAttributes, req *admissionv1.AdmissionRequest, vars plugincel.OptionalVariableBindings, ns *corev1.Namespace, budget int64) ([]plugincel.EvaluationResult, int64, error) {
	given, book := grant(ctx, budget)
	results, remaining, err := c.ConditionEvaluator.ForInput(ctx, attr, req, vars, ns, given)
	remaining, err = book(remaining, err)
	return results, remaining, err
}

// budgetedMutation charges a mutation's cost to the request.
type budgetedMutation struct {
	plugincel.MutatingEvaluator
}

func (m budgetedMutation) ForInput(ctx context.Context, attr *admission.VersionedAttributes, req *admissionv1.AdmissionRequest, vars plugincel.OptionalVariableBindings, ns *corev1.Namespace, budget int64) (plugincel.EvaluationResult, int64, error) {
	given, book := grant(ctx, budget)
	result, remaining, err := m.MutatingEvaluator.ForInput(ctx, attr, req, vars, ns, given)
	remaining, err = book(remaining, err)
	return result, remaining, err
}
