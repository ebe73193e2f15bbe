package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apiserver/pkg/admission"

	"github.com/doris-admission/doris-admission/policies/compile"
)

// Results of a policy on an existing object, as PolicyReports name them.
const (
	ResultPass  = "pass"
	ResultFail  = "fail"
	ResultWarn  = "warn"
	ResultError = "error"
)

// AuditResult is what one policy makes of one object that already exists.
type AuditResult struct {
	Policy, Kind, Origin string
	// Rule is the part of the policy: the failed validation's field, or
	// "mutations".
	Rule string
	// Result is pass, fail, warn or error.
	Result  string
	Message string
}

// Audit evaluates every policy on an object that already exists, as if it
// were created now. A validating policy gives a result per failed validation
// (fail for Deny and Audit, warn for Warn only), or pass. A mutating policy
// that would change the object fails it: the object is not what the policy
// would make it, and the message says what it lacks. Policies that do not
// match the object give nothing.
func (e *Engine) Audit(ctx context.Context, obj *unstructured.Unstructured) ([]AuditResult, error) {
	set := e.current.Load()
	req, err := e.RequestForObject(obj)
	if err != nil {
		return nil, err
	}
	var results []AuditResult
	for _, c := range set.mutating {
		if r, ok := e.auditMutating(ctx, c, req); ok {
			results = append(results, r)
		}
	}
	// A validation sees the stored object as an update that changes
	// nothing, where it matches updates: what exists already is judged as
	// what it is (an IP-mode cluster stays one), not as something new.
	again, err := e.RequestForUpdate(obj, obj)
	if err != nil {
		return nil, err
	}
	for _, c := range set.validating {
		if found := e.auditValidating(ctx, c, again); found != nil {
			results = append(results, found...)
		} else {
			results = append(results, e.auditValidating(ctx, c, req)...)
		}
	}
	return results, nil
}

func (e *Engine) auditValidating(ctx context.Context, c *compile.Compiled, req *Request) []AuditResult {
	var versioned *admission.VersionedAttributes
	base := AuditResult{Policy: c.Name(), Kind: c.Kind(), Origin: c.Origin, Rule: "validations"}
	if ok, _, err := e.match(c, req, &versioned); err != nil || !ok {
		return nil
	}
	violations, ignored, _, err := e.validateWith(WithRequestBudget(ctx), c, req, &versioned)
	if err != nil {
		base.Result, base.Message = ResultError, err.Error()
		return []AuditResult{base}
	}
	if len(ignored) > 0 {
		// What admission lets through unchecked is an error to the audit.
		out := make([]AuditResult, len(ignored))
		for i, v := range ignored {
			out[i] = base
			out[i].Result, out[i].Message = ResultError, v.Message
		}
		return out
	}
	if len(violations) == 0 {
		base.Result, base.Message = ResultPass, "passes every validation"
		return []AuditResult{base}
	}
	result := ResultFail
	if !slices.Contains(c.Actions, admissionregistrationv1.Deny) && slices.Contains(c.Actions, admissionregistrationv1.Warn) {
		result = ResultWarn
	}
	out := make([]AuditResult, len(violations))
	for i, v := range violations {
		out[i] = base
		out[i].Result, out[i].Message = result, v.Message
		if v.Field != "" {
			out[i].Rule = v.Field
		}
	}
	return out
}

// auditMutating applies one policy alone to the stored object: if it would
// change it, the object lacks what the policy adds.
func (e *Engine) auditMutating(ctx context.Context, c *compile.Compiled, req *Request) (AuditResult, bool) {
	var versioned *admission.VersionedAttributes
	result := AuditResult{Policy: c.Name(), Kind: c.Kind(), Origin: c.Origin, Rule: "mutations"}
	if ok, _, err := e.match(c, req, &versioned); err != nil || !ok {
		return result, false
	}
	written, err := e.mutateWith(WithRequestBudget(ctx), c, req, &versioned, &MutateResult{})
	switch {
	case err != nil:
		result.Result, result.Message = ResultError, err.Error()
	case len(written) == 0:
		result.Result, result.Message = ResultPass, "has everything the policy adds"
	default:
		result.Result = ResultFail
		result.Message = fmt.Sprintf("lacks what the policy adds (%s). Admission cannot change a stored object: update it to have it added, e.g. %s", fieldPaths(written), updateCommand(req))
	}
	return result, true
}

// fieldPaths names, briefly, the parts of an object that were written.
func fieldPaths(written []compile.ObjectPath) string {
	var paths []string
	for _, p := range written {
		if path := fieldPath(p); !slices.Contains(paths, path) {
			paths = append(paths, path)
		}
	}
	const shown = 4
	if len(paths) > shown {
		return strings.Join(paths[:shown], ", ") + fmt.Sprintf(" and %d more", len(paths)-shown)
	}
	return strings.Join(paths, ", ")
}

// fieldPath writes an object path like spec.template.spec.containers[0].env;
// the whole object is "its content".
func fieldPath(p compile.ObjectPath) string {
	if len(p) == 0 {
		return "its content"
	}
	var b strings.Builder
	for _, key := range p {
		if key != "" && strings.Trim(key, "0123456789") == "" {
			fmt.Fprintf(&b, "[%s]", key)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(key)
	}
	return b.String()
}

// updateCommand is a kubectl command that updates the request's object in
// place, so the mutating policies run on it.
func updateCommand(req *Request) string {
	command := fmt.Sprintf(`kubectl annotate %s %s`, strings.ToLower(req.GetKind().Kind), req.GetName())
	if req.GetNamespace() != "" {
		command += " -n " + req.GetNamespace()
	}
	command += ` doris-admission.io/reconcile="$(date +%s)" --overwrite`
	if req.GetKind().Kind == "StatefulSet" {
		command += " (its pods then restart one by one)"
	}
	return command
}
