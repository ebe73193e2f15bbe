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
	kjson "sigs.k8s.io/json"
)

// maxReviewBytes bounds an AdmissionReview body. The API server's own limit
// on an object is 3 MiB; a review carries the object and the old object.
// controller-runtime refuses a body over 7 MiB with an answer the API server
// cannot match to the request (no uid), so the limit here is the same: the
// refusal is this handler's plain 413.
const maxReviewBytes = 7 << 20

// readReview reads, decodes and checks the body: the review, or the HTTP
// status to answer with and a message that says what is wrong. A body that
// is not an AdmissionReview an API server would send gets HTTP 400 (or 405,
// 413, 415) with a plain message: controller-runtime would answer it with
// HTTP 200 and an AdmissionReview, and allows a review that has no request.
func readReview(r *http.Request) ([]byte, *admissionv1.AdmissionReview, int, error) {
	if r.Method != http.MethodPost {
		return nil, nil, http.StatusMethodNotAllowed, fmt.Errorf("method %s is not allowed: send AdmissionReviews with POST", r.Method)
	}
	if mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mediaType != "application/json" {
		return nil, nil, http.StatusUnsupportedMediaType, fmt.Errorf("content type %q is not supported: send application/json", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReviewBytes+1))
	if err != nil {
		return nil, nil, http.StatusBadRequest, fmt.Errorf("reading the body: %w", err)
	}
	if len(body) > maxReviewBytes {
		return nil, nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the AdmissionReview is larger than %d bytes", maxReviewBytes)
	}
	review, err := decodeReview(body)
	if err != nil {
		return nil, nil, http.StatusBadRequest, err
	}
	return body, review, http.StatusOK, nil
}

// decodeReview decodes body once, as controller-runtime decodes an
// AdmissionReview (field names are case sensitive, every field has its
// type), and says what keeps it from being an admission.k8s.io/v1
// AdmissionReview with a request to answer.
func decodeReview(body []byte) (*admissionv1.AdmissionReview, error) {
	if !utf8.Valid(body) {
		return nil, errors.New("the body is not valid UTF-8 JSON")
	}
	var review admissionv1.AdmissionReview
	if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &review); err != nil {
		return nil, fmt.Errorf("the body is not an AdmissionReview: %w", err)
	}
	if err := checkReview(&review); err != nil {
		return nil, err
	}
	return &review, nil
}

// checkReview says what keeps review from being an admission.k8s.io/v1
// AdmissionReview with a request to answer.
func checkReview(review *admissionv1.AdmissionReview) error {
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
