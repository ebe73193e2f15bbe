package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"unicode/utf8"

	admissionv1 "k8s.io/api/admission/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// maxReviewBytes bounds an AdmissionReview body. The API server's own limit
// on an object is 3 MiB; a review carries the object and the old object.
// controller-runtime refuses a body over 7 MiB with an answer the API server
// cannot match to the request (no uid), so the limit here is the same: the
// refusal is this handler's plain 413.
const maxReviewBytes = 7 << 20

// strictReviews answers HTTP 400 (or 405, 413, 415) with a plain message to a
// body that is not an AdmissionReview an API server would send, and passes
// the others to next. controller-runtime would answer such bodies with HTTP
// 200 and an AdmissionReview, and allows a review that has no request.
func strictReviews(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, status, err := readReview(r)
		if err != nil {
			http.Error(w, err.Error(), status)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// readReview reads and checks the body; on failure it returns the HTTP
// status to answer with and a message that says what is wrong.
func readReview(r *http.Request) ([]byte, int, error) {
	if r.Method != http.MethodPost {
		return nil, http.StatusMethodNotAllowed, fmt.Errorf("method %s is not allowed: send AdmissionReviews with POST", r.Method)
	}
	if mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mediaType != "application/json" {
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("content type %q is not supported: send application/json", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReviewBytes+1))
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("reading the body: %w", err)
	}
	if len(body) > maxReviewBytes {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the AdmissionReview is larger than %d bytes", maxReviewBytes)
	}
	if err := checkReview(body); err != nil {
		return nil, http.StatusBadRequest, err
	}
	return body, http.StatusOK, nil
}

// checkReview says what keeps body from being an admission.k8s.io/v1
// AdmissionReview with a request to answer.
func checkReview(body []byte) error {
	if !utf8.Valid(body) {
		return errors.New("the body is not valid UTF-8 JSON")
	}
	// Decoded as controller-runtime decodes it next (field names are case
	// sensitive, every field has its type), so what passes here decodes there.
	var review admissionv1.AdmissionReview
	if err := utiljson.Unmarshal(body, &review); err != nil {
		return fmt.Errorf("the body is not an AdmissionReview: %w", err)
	}
	switch {
	case review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview":
		return fmt.Errorf("the body is apiVersion %q kind %q: want an admission.k8s.io/v1 AdmissionReview", review.APIVersion, review.Kind)
	case review.Request == nil:
		return errors.New("the AdmissionReview has no request")
	case review.Request.UID == "" || review.Request.Kind.Kind == "" || review.Request.Operation == "":
		return errors.New("the AdmissionReview's request lacks uid, kind or operation")
	}
	switch op := review.Request.Operation; op {
	case admissionv1.Create, admissionv1.Update:
		if raw := bytes.TrimSpace(review.Request.Object.Raw); len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
			return fmt.Errorf("the AdmissionReview's request has no request.object: a %s request carries the object", op)
		}
	case admissionv1.Delete, admissionv1.Connect:
	default:
		return fmt.Errorf("the AdmissionReview's request.operation is %q: want CREATE, UPDATE, DELETE or CONNECT", op)
	}
	return nil
}
