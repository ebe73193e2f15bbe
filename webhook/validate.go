package webhook

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/engine"
)

// validator answers /validate: policy objects are checked for expressions
// that do not compile, everything else against the validating policies.
type validator struct {
	engine *engine.Engine
}

func (v validator) decide(ctx context.Context, req admission.Request) admission.Response {
	if policies.IsPolicy(schema.GroupVersionKind(req.Kind)) && req.Operation != admissionv1.Delete {
		return v.checkPolicy(req)
	}
	if engine.ValidatedWhenMutating(schema.GroupVersionResource(req.Resource), admissionregistrationv1.OperationType(req.Operation)) {
		return admission.Allowed("validated in the mutating phase")
	}
	r, err := request(ctx, &req.AdmissionRequest)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	return check(ctx, v.engine, req, r)
}

// check runs the validating policies on r: a denial with every failure, or
// an allowance with the warnings and audit annotations.
func check(ctx context.Context, eng *engine.Engine, req admission.Request, r *engine.Request) admission.Response {
	res, err := eng.Validate(ctx, r)
	if err != nil {
		return policyFailed(err)
	}
	warnings := make([]string, len(res.Warned))
	for i, w := range res.Warned {
		warnings[i] = w.String()
	}
	resp := admission.Allowed("")
	if len(res.Denied) > 0 {
		resp = denied(req, res.Denied)
	}
	resp.AuditAnnotations = res.AuditAnnotations
	return resp.WithWarnings(warnings...)
}

// denied is a 422 Invalid answer with one cause per failed validation, all of
// them, so the user fixes everything in one go.
func denied(req admission.Request, violations []engine.Violation) admission.Response {
	causes := make([]metav1.StatusCause, len(violations))
	messages := make([]string, len(violations))
	for i, v := range violations {
		causes[i] = metav1.StatusCause{Type: metav1.CauseTypeFieldValueInvalid, Field: v.Field, Message: fmt.Sprintf("%s (policy %s)", v.Message, v.Policy)}
		messages[i] = v.String()
	}
	reason, code := metav1.StatusReasonInvalid, int32(http.StatusUnprocessableEntity)
	if len(violations) == 1 && violations[0].Reason == metav1.StatusReasonForbidden {
		reason, code = metav1.StatusReasonForbidden, http.StatusForbidden
	}
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed: false,
		Result: &metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    code,
			Reason:  reason,
			Message: fmt.Sprintf("%s %s is invalid: %s", req.Kind.Kind, objectName(req), strings.Join(messages, "; ")),
			Details: &metav1.StatusDetails{Name: req.Name, Group: req.Kind.Group, Kind: req.Kind.Kind, Causes: causes},
		},
	}}
}

// checkPolicy rejects a policy whose expressions do not compile or
// type-check, naming each expression, its field and the compiler's message.
func (v validator) checkPolicy(req admission.Request) admission.Response {
	doc, err := policies.DocumentFromRaw("request", req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	p, err := policies.PolicyFromDocument(doc)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	problems := v.engine.Check(p)
	if len(problems) == 0 {
		return admission.Allowed("")
	}
	violations := make([]engine.Violation, len(problems))
	for i, problem := range problems {
		violations[i] = engine.Violation{Policy: p.Name(), Field: problem.Field, Message: problem.Summary()}
	}
	return denied(req, violations)
}

// objectName is namespace/name, or name for cluster-scoped objects.
func objectName(req admission.Request) string {
	if req.Namespace == "" {
		return req.Name
	}
	return req.Namespace + "/" + req.Name
}
