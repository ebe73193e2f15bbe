package compile

import (
	"context"

	"github.com/google/cel-go/common/types"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
)

// Kubernetes' validator evaluates a policy's messageExpressions every time
// the policy runs, whether its validations pass or not, and in a context of
// their own that evaluates the variables again. A message is only read for a
// validation that did not pass, so here the messages are evaluated only when
// one did not: on a passing request that halves the work of a policy such as
// node-ports. The two evaluators below meet through the context of one
// evaluation, which WithValidationOutcome makes.

type outcomeKey struct{}

// validationOutcome is what the validations of one evaluation gave.
type validationOutcome struct {
	allPassed bool
}

// WithValidationOutcome gives ctx a place for one evaluation's outcome.
func WithValidationOutcome(ctx context.Context) context.Context {
	return context.WithValue(ctx, outcomeKey{}, &validationOutcome{})
}

// recordedValidations notes in the context whether every validation passed.
type recordedValidations struct {
	plugincel.ConditionEvaluator
}

func (v recordedValidations) ForInput(ctx context.Context, attr *admission.VersionedAttributes, req *admissionv1.AdmissionRequest, vars plugincel.OptionalVariableBindings, ns *corev1.Namespace, budget int64) ([]plugincel.EvaluationResult, int64, error) {
	results, remaining, err := v.ConditionEvaluator.ForInput(ctx, attr, req, vars, ns, budget)
	if outcome, ok := ctx.Value(outcomeKey{}).(*validationOutcome); ok {
		outcome.allPassed = err == nil
		for _, r := range results {
			outcome.allPassed = outcome.allPassed && r.Error == nil && r.EvalResult == types.True
		}
	}
	return results, remaining, err
}

// lazyMessages evaluates the messages only when a validation did not pass.
type lazyMessages struct {
	plugincel.ConditionEvaluator
}

func (m lazyMessages) ForInput(ctx context.Context, attr *admission.VersionedAttributes, req *admissionv1.AdmissionRequest, vars plugincel.OptionalVariableBindings, ns *corev1.Namespace, budget int64) ([]plugincel.EvaluationResult, int64, error) {
	if outcome, ok := ctx.Value(outcomeKey{}).(*validationOutcome); ok && outcome.allPassed {
		return nil, budget, nil
	}
	return m.ConditionEvaluator.ForInput(ctx, attr, req, vars, ns, budget)
}
