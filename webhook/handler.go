package webhook

import (
	"context"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/log"
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
	// KindOf is the kind a request is counted under, from a fixed set (see
	// engine.Engine.KindOf); nil counts every request under "other".
	KindOf func(schema.GroupVersionResource, string) string
}

// Handle implements admission.Handler. It logs every answer that is not a
// plain allowance, with the request's UID (controller-runtime puts it in the
// context's logger).
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	resp := h.Decide(ctx, req)
	requestSeconds.WithLabelValues(h.Name).Observe(time.Since(start).Seconds())
	outcome := result(resp)
	requestsTotal.WithLabelValues(h.Name, h.kind(req), operation(req), outcome).Inc()
	if (outcome == resultDenied || outcome == resultErrored) && resp.Result != nil {
		log.FromContext(ctx).Info("refused", "webhook", h.Name, "result", outcome, "message", redact(req, resp.Result.Message))
	}
	return resp
}

// kind is the kind req is counted under: never a name the request makes up.
func (h *Handler) kind(req admission.Request) string {
	if h.KindOf == nil {
		return "other"
	}
	return h.KindOf(schema.GroupVersionResource(req.Resource), req.SubResource)
}

// operation is req's operation, or "other" for what the API server never sends.
func operation(req admission.Request) string {
	switch op := admissionv1.Operation(req.Operation); op {
	case admissionv1.Create, admissionv1.Update, admissionv1.Delete, admissionv1.Connect:
		return string(op)
	}
	return "other"
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
