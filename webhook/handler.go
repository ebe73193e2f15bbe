package webhook

import (
	"context"
	"net/http"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// DecideFunc computes the answer to one admission request.
type DecideFunc func(ctx context.Context, req admission.Request) admission.Response

// Handler answers the AdmissionReviews of one endpoint and counts each answer.
type Handler struct {
	// Name labels this endpoint in metrics and logs: "mutate" or "validate".
	Name string
	// Decide computes the answer to a request.
	Decide DecideFunc
}

// Handle implements admission.Handler.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	resp := h.Decide(ctx, req)
	requestsTotal.WithLabelValues(h.Name, req.Kind.Kind, string(req.Operation), result(resp)).Inc()
	return resp
}

// result names how a response ends, for the requests counter.
func result(resp admission.Response) string {
	switch {
	case resp.Result != nil && (resp.Result.Code == http.StatusBadRequest || resp.Result.Code >= 500):
		return resultErrored
	case !resp.Allowed:
		return resultDenied
	case len(resp.Patches) > 0 || len(resp.Patch) > 0:
		return resultPatched
	default:
		return resultAllowed
	}
}
