package compile

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	apiservercel "k8s.io/apiserver/pkg/cel"
)

// RequestCostBudget is the CEL cost all policies together may spend on one
// admission request. Kubernetes gives each policy binding this much; here one
// request gets it, so many policies cannot add up to a stall.
const RequestCostBudget = celconfig.RuntimeCELCostBudget

// requestState is what the evaluations of one request share: the CEL cost
// left, and the answers of the match conditions policies share.
type requestState struct {
	left    atomic.Int64
	answers sharedAnswers
}

type requestKey struct{}

// WithRequest gives ctx a full request budget and no shared answers yet,
// unless it has them; every evaluation under ctx shares them.
func WithRequest(ctx context.Context) context.Context {
	if ctx.Value(requestKey{}) != nil {
		return ctx
	}
	r := &requestState{}
	r.left.Store(RequestCostBudget)
	return context.WithValue(ctx, requestKey{}, r)
}

// requestOf is ctx's request state, nil when it has none.
func requestOf(ctx context.Context) *requestState {
	r, _ := ctx.Value(requestKey{}).(*requestState)
	return r
}

// grant gives an evaluation that asks for budget what the request has left of
// it, and returns a function that books what the evaluation spent and
// translates its result back into the budget it asked for.
func grant(ctx context.Context, budget int64) (int64, func(remaining int64, err error) (int64, error)) {
	b := requestOf(ctx)
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

// BudgetLeft is the CEL cost ctx's request budget has left, or
// RequestCostBudget when ctx has none.
func BudgetLeft(ctx context.Context) int64 {
	b := requestOf(ctx)
	if b == nil {
		return RequestCostBudget
	}
	return b.left.Load()
}
