package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
	// The policies that mutate and those that validate while mutating
	// spend one budget: this is one request of the API server's.
	ctx = policies.WithRequestBudget(ctx)
	res, err := m.engine.Mutate(ctx, r)
	if err != nil {
		return policyFailed(err)
	}
	mutated := req.Object.Raw
	if res.Object != nil {
		if mutated, err = json.Marshal(res.Object.Object); err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
	}
	resp := admission.Allowed("")
	if policies.ValidatedWhenMutating(schema.GroupVersionResource(req.Resource)) {
		if resp = m.validate(ctx, req, mutated); !resp.Allowed {
			return resp
		}
	}
	if res.Object != nil {
		// The patch is computed against the raw request object, so fields the
		// policies did not touch are left exactly as the client sent them.
		patched := admission.PatchResponseFromRaw(req.Object.Raw, mutated)
		resp.Patches, resp.PatchType = patched.Patches, patched.PatchType
	}
	return resp.WithWarnings(res.Warnings...)
}

// reservationHold is how long an admitted Service's node ports count as
// taken before the informer reports the Service: long enough for the API
// server to store it, short enough that a request it then refuses does not
// block the ports for long.
const reservationHold = 30 * time.Second

// validate runs the validating policies on the mutated object of a request
// whose resource the API server allocates for before validating admission,
// and reserves what it admits.
func (m mutator) validate(ctx context.Context, req admission.Request, mutated []byte) admission.Response {
	review := req.AdmissionRequest
	review.Object.Raw = mutated
	r, err := policies.RequestFromAdmission(&review)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	resp := check(ctx, m.engine, req, r)
	if resp.Allowed && (req.DryRun == nil || !*req.DryRun) {
		if obj, ok := r.GetObject().(*unstructured.Unstructured); ok {
			m.engine.Admitted(obj, reservationHold)
		}
	}
	return resp
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
