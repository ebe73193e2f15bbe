package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/doris-admission/doris-admission/policies/engine"
	policypatch "github.com/doris-admission/doris-admission/policies/jsonpatch"
)

// mutator answers /mutate with the engine's mutating policies.
type mutator struct {
	engine *engine.Engine
}

func (m mutator) decide(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("only CREATE and UPDATE are mutated")
	}
	r, err := request(ctx, &req.AdmissionRequest)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	// The policies that mutate and those that validate while mutating
	// spend one budget: this is one request of the API server's.
	ctx = engine.WithRequestBudget(ctx)
	res, err := m.engine.Mutate(ctx, r)
	if err != nil {
		return policyFailed(err)
	}
	resp := admission.Allowed("")
	validate := engine.ValidatedWhenMutating(schema.GroupVersionResource(req.Resource), admissionregistrationv1.OperationType(req.Operation))
	if res.Object == nil {
		if validate {
			// The object is the request's, decoded already.
			if resp = m.validate(ctx, req, r); !resp.Allowed {
				return resp
			}
		}
		return resp.WithWarnings(res.Warnings...)
	}
	// The patch is computed against the request object, so fields the
	// policies did not touch are left exactly as the client sent them.
	original, _ := r.GetObject().(*unstructured.Unstructured)
	var patches []jsonpatch.Operation
	ok := original != nil && !validate
	if ok {
		patches, ok = policypatch.CreatePatch(original.Object, res.Object.Object)
	}
	if !ok {
		mutated, err := json.Marshal(res.Object.Object)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		if validate {
			review := req.AdmissionRequest
			review.Object.Raw = mutated
			mutatedReq, err := request(ctx, &review)
			if err != nil {
				return admission.Errored(http.StatusBadRequest, err)
			}
			if resp = m.validate(ctx, req, mutatedReq); !resp.Allowed {
				return resp
			}
		}
		patched := admission.PatchResponseFromRaw(req.Object.Raw, mutated)
		resp.Patches, resp.PatchType = patched.Patches, patched.PatchType
		return resp.WithWarnings(res.Warnings...)
	}
	resp.Patches = patches
	if len(patches) > 0 {
		resp.PatchType = ptr.To(admissionv1.PatchTypeJSONPatch)
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
func (m mutator) validate(ctx context.Context, req admission.Request, r *engine.Request) admission.Response {
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
	var perr *engine.PolicyError
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
