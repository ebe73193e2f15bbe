package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	celconfig "k8s.io/apiserver/pkg/apis/cel"

	"github.com/doris-admission/doris-admission/policies/compile"
)

// Violation is one failed validation of one policy.
type Violation struct {
	Policy string
	// Field is the object's field the failure is about ("" for the object).
	Field   string
	Message string
	// Reason is the status reason the policy asked for (default Invalid).
	Reason metav1.StatusReason
}

func (v Violation) String() string {
	if v.Field == "" {
		return fmt.Sprintf("%s (policy %s)", v.Message, v.Policy)
	}
	return fmt.Sprintf("%s: %s (policy %s)", v.Field, v.Message, v.Policy)
}

// ValidateResult is what the validating policies found in a request.
type ValidateResult struct {
	// Denied are the failures of policies whose actions include Deny.
	Denied []Violation
	// Warned are the failures of policies whose actions include Warn.
	Warned []Violation
	// Audited are the failures of policies whose actions include Audit:
	// they go to the request's audit event, not to the client.
	Audited []Violation
	// AuditAnnotations are the annotations for the request's audit event.
	AuditAnnotations map[string]string
}

// auditFailureKey is the audit annotation that lists Audit-action failures,
// the one native admission policies use.
const auditFailureKey = "validation.policy.admission.k8s.io/validation_failure"

// Validate runs every matching ValidatingPolicy on req and collects every
// failure, not only the first.
func (e *Engine) Validate(ctx context.Context, req *Request) (*ValidateResult, error) {
	set := e.current.Load()
	ctx = WithRequestBudget(ctx)
	result := &ValidateResult{AuditAnnotations: map[string]string{}}
	if !set.validatingResources.MayMatch(req.GetResource().Resource) {
		return result, nil
	}
	var versioned *admission.VersionedAttributes
	var audited []auditFailure
	for _, c := range set.validating {
		if !set.serves(req, c) {
			continue
		}
		violations, ignored, annotations, err := e.validateWith(ctx, c, req, &versioned)
		switch {
		case err != nil && c.Failure == admissionregistrationv1.Ignore:
			ignored = append(ignored, ignoredFailure(c.Name(), err))
		case err != nil:
			violations = []Violation{{Policy: c.Name(), Message: err.Error(), Reason: metav1.StatusReasonInternalError}}
		}
		result.Warned = append(result.Warned, ignored...)
		for k, v := range annotations {
			result.AuditAnnotations[c.Name()+"/"+k] = v
		}
		for _, action := range c.Actions {
			switch action {
			case admissionregistrationv1.Deny:
				result.Denied = append(result.Denied, violations...)
			case admissionregistrationv1.Warn:
				result.Warned = append(result.Warned, violations...)
			case admissionregistrationv1.Audit:
				result.Audited = append(result.Audited, violations...)
				for _, v := range violations {
					audited = append(audited, auditFailure{Message: v.Message, Policy: c.Name(), ValidationActions: c.Actions})
				}
			}
		}
	}
	if len(audited) > 0 {
		data, err := json.Marshal(audited)
		if err != nil {
			return nil, err
		}
		result.AuditAnnotations[auditFailureKey] = string(data)
	}
	return result, nil
}

// auditFailure is one entry of the validation_failure audit annotation.
type auditFailure struct {
	Message           string                                     `json:"message"`
	Policy            string                                     `json:"policy"`
	ValidationActions []admissionregistrationv1.ValidationAction `json:"validationActions"`
}

// validateWith runs one policy. An error means the policy could not be
// matched or evaluated; expression failures come back as violations, or as
// ignored failures where failurePolicy is Ignore.
func (e *Engine) validateWith(ctx context.Context, c *compile.Compiled, req *Request, versioned **admission.VersionedAttributes) (violations, ignored []Violation, annotations map[string]string, err error) {
	ok, gvr, err := e.match(c, req, versioned)
	if err != nil {
		return nil, nil, nil, &PolicyError{Policy: c.Name(), Err: err}
	}
	if !ok {
		return nil, nil, nil, nil
	}
	failed := true
	defer func(start time.Time) { observe(c, start, failed) }(time.Now())
	ns, params, err := e.inputs(ctx, c, req)
	if err != nil {
		return nil, nil, nil, err
	}
	failed = false
	annotations = map[string]string{}
	for _, param := range params {
		res := c.Validator.Validate(compile.WithValidationOutcome(ctx), gvr, *versioned, param, ns, celconfig.RuntimeCELCostBudget, nil)
		found, skipped, evalFailed := violationsOf(c, res)
		violations = append(violations, found...)
		ignored = append(ignored, skipped...)
		failed = failed || evalFailed
		for _, a := range res.AuditAnnotations {
			if a.Action == validating.AuditAnnotationActionPublish {
				annotations[a.Key] = a.Value
			}
		}
	}
	return violations, ignored, annotations, nil
}

// violations turns the failed decisions of one evaluation into violations
// and the failures failurePolicy Ignore let through into ignored, and tells
// whether an expression could not be evaluated.
func violationsOf(c *compile.Compiled, res validating.ValidateResult) (violations, ignored []Violation, failed bool) {
	validations := c.Validating.Spec.Validations
	for i, d := range res.Decisions {
		failed = failed || d.Evaluation == validating.EvalError
		if d.Evaluation == validating.EvalError && d.Action == validating.ActionAdmit {
			perr := &PolicyError{Policy: c.Name(), Err: errors.New(d.Message)}
			if len(res.Decisions) == len(validations) {
				perr.Field, perr.Expression = fmt.Sprintf("spec.validations[%d].expression", i), validations[i].Expression
			}
			ignored = append(ignored, ignoredFailure(c.Name(), perr))
		}
		if d.Action != validating.ActionDeny {
			continue
		}
		v := Violation{Policy: c.Name(), Message: d.Message, Reason: d.Reason}
		if len(res.Decisions) == len(validations) {
			v.Field = strings.TrimPrefix(validations[i].FieldPath, ".")
			if d.Evaluation == validating.EvalError {
				v.Message = fmt.Sprintf("expression %q could not be evaluated: %s", validations[i].Expression, d.Message)
			}
		}
		if v.Reason == "" {
			v.Reason = metav1.StatusReasonInvalid
		}
		violations = append(violations, v)
	}
	return violations, ignored, failed
}

// ignoredFailure is what a policy with failurePolicy Ignore that could not
// be evaluated gives, in either phase: a warning that names the policy,
// where and why it failed, and that the request went on without it.
func ignoredFailure(policy string, err error) Violation {
	message := "could not be evaluated"
	var perr *PolicyError
	if errors.As(err, &perr) {
		if perr.Field != "" {
			message += " at " + perr.Field
		}
		if perr.Expression != "" {
			message += fmt.Sprintf(" (expression %q)", perr.Expression)
		}
		err = perr.Err
	}
	return Violation{Policy: policy, Message: fmt.Sprintf("%s: %v; ignored (failurePolicy: Ignore)", message, err), Reason: metav1.StatusReasonInternalError}
}
