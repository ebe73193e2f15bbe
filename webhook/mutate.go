package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/doris-admission/doris-admission/policies"
)

// mutator answers /mutate with the engine's mutating policies.
type mutator struct {
	engine *policies.Engine
}

func (m mutator) decide(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("only CREATE and UPDATE are mutated")
	}
	r, err := policies.RequestFromAdmission(&req.AdmissionRequest)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	res, err := m.engine.Mutate(ctx, r)
	if err != nil {
		return policyFailed(err)
	}
	if res.Object == nil {
		return admission.Allowed("").WithWarnings(res.Warnings...)
	}
	mutated, err := json.Marshal(res.Object.Object)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	// The patch is computed against the raw request object, so fields the
	// policies did not touch are left exactly as the client sent them.
	return admission.PatchResponseFromRaw(req.Object.Raw, mutated).WithWarnings(res.Warnings...)
}

// policyFailed rejects a request because a policy with failurePolicy Fail
// could not be evaluated; the message names the policy and the expression.
func policyFailed(err error) admission.Response {
	var perr *policies.PolicyError
	if !errors.As(err, &perr) {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed: false,
		Result: &metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusInternalServerError,
			Reason:  metav1.StatusReasonInternalError,
			Message: perr.Error() + " (failurePolicy: Fail)",
		},
	}}
}
