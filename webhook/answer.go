package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// maxRequestSize is controller-runtime's limit on an AdmissionReview body:
// it refuses one of this size or more.
const maxRequestSize = 7 * 1024 * 1024

// reviewType is what the answers are: admission.k8s.io/v1 AdmissionReviews.
var reviewType = admissionv1.SchemeGroupVersion.WithKind("AdmissionReview")

// hookLog is the logger controller-runtime's admission.Webhook logs with.
var hookLog = sync.OnceValue(func() logr.Logger { return logf.Log.WithName("admission") })

// answer serves one endpoint. readReview reads, checks and decodes the body,
// once; the review is then answered as controller-runtime's admission.Webhook
// answers it (its checks, its request logger in the context, its panic
// recovery, the response it writes), which would otherwise decode the body
// again, twice (its type sniffing and its decoding).
func answer(hook *admission.Webhook) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, review, status, err := readReview(r)
		if err != nil {
			http.Error(w, err.Error(), status)
			return
		}
		// controller-runtime's own checks, in its order.
		if len(body) >= maxRequestSize {
			err := fmt.Errorf("request entity is too large; limit is %d bytes", maxRequestSize)
			hookLog().Error(err, "unable to read the body from the incoming request; limit reached")
			writeAnswer(w, admission.Errored(http.StatusRequestEntityTooLarge, err), false)
			return
		}
		if contentType := r.Header.Get("Content-Type"); contentType != "application/json" {
			err := fmt.Errorf("contentType=%s, expected application/json", contentType)
			hookLog().Error(err, "unable to process a request with unknown content type")
			writeAnswer(w, admission.Errored(http.StatusBadRequest, err), false)
			return
		}
		req := admission.Request{AdmissionRequest: *review.Request}
		if log := hookLog(); log.V(5).Enabled() {
			admission.DefaultLogConstructor(log, &req).V(5).Info("received request")
		}
		writeAnswer(w, hook.Handle(r.Context(), req), true)
	})
}

// writeAnswer writes resp as controller-runtime does: an AdmissionReview,
// typed when it answers a decoded review.
func writeAnswer(w http.ResponseWriter, resp admission.Response, typed bool) {
	out := admissionv1.AdmissionReview{Response: &resp.AdmissionResponse}
	if typed {
		out.SetGroupVersionKind(reviewType)
	}
	if err := json.NewEncoder(w).Encode(out); err != nil {
		hookLog().Error(err, "unable to encode and write the response")
		serverError := admission.Errored(http.StatusInternalServerError, err)
		if err := json.NewEncoder(w).Encode(admissionv1.AdmissionReview{Response: &serverError.AdmissionResponse}); err != nil {
			hookLog().Error(err, "still unable to encode and write the InternalServerError response")
		}
		return
	}
	if log := hookLog(); log.V(5).Enabled() {
		if res := out.Response; res.Result != nil {
			log = log.WithValues("code", res.Result.Code, "reason", res.Result.Reason, "message", res.Result.Message)
		}
		log.V(5).Info("wrote response", "requestID", out.Response.UID, "allowed", out.Response.Allowed)
	}
}
