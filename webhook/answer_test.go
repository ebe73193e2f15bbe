package webhook

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// TestAnswerIsControllerRuntimes checks that answer, which decodes a body
// once, answers a review that passes readReview byte for byte as
// controller-runtime's admission.Webhook does after decoding it itself.
func TestAnswerIsControllerRuntimes(t *testing.T) {
	decide := func(_ context.Context, req admission.Request) admission.Response {
		switch req.Name {
		case "patch":
			return admission.PatchResponseFromRaw(req.Object.Raw, []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"patch","labels":{"a":"b"}}}`))
		case "deny":
			return admission.Denied("no")
		case "warn":
			return admission.Allowed("").WithWarnings("careful")
		case "panic":
			panic("boom")
		}
		return admission.Allowed("")
	}
	body := func(name string) string {
		return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"ConfigMap"},` +
			`"resource":{"group":"","version":"v1","resource":"configmaps"},"name":"` + name + `","namespace":"ns","operation":"CREATE",` +
			`"userInfo":{"username":"alice","groups":["g"],"extra":{"k":["v"]}},"object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `"}},` +
			`"dryRun":false,"options":{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}}}`
	}
	cases := []struct{ body, contentType string }{
		{body("allow"), "application/json"},
		{body("patch"), "application/json"},
		{body("deny"), "application/json"},
		{body("warn"), "application/json"},
		{body("panic"), "application/json"},
		{body("allow"), "application/json; charset=utf-8"},
		{body("allow")[:len(body("allow"))-1] + strings.Repeat(" ", maxRequestSize-len(body("allow"))) + "}", "application/json"},
	}
	for _, tt := range cases {
		serve := func(h http.Handler) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, MutatePath, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.contentType)
			h.ServeHTTP(rec, req)
			return rec
		}
		hook := func() *admission.Webhook {
			return &admission.Webhook{Handler: &Handler{Name: "mutate", Decide: decide}}
		}
		got := serve(answer(hook()))
		// What passes readReview goes to controller-runtime as it is.
		want := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _, status, err := readReview(r)
			if err != nil {
				http.Error(w, err.Error(), status)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			hook().ServeHTTP(w, r)
		}))
		if got.Code != want.Code || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
			t.Errorf("%.80s (%s):\ngot  HTTP %d %q %.400s\nwant HTTP %d %q %.400s", tt.body, tt.contentType,
				got.Code, got.Header().Get("Content-Type"), got.Body, want.Code, want.Header().Get("Content-Type"), want.Body)
		}
	}
}
