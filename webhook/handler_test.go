package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// review posts an AdmissionReview for kind/operation to h and returns the response.
func review(t *testing.T, h http.Handler, kind string, op admissionv1.Operation) *admissionv1.AdmissionResponse {
	t.Helper()
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "uid-1",
			Kind:      metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: kind},
			Operation: op,
			Object:    runtime.RawExtension{Raw: []byte(`{"apiVersion":"apps/v1","kind":"` + kind + `"}`)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, MutatePath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("no AdmissionReview response (HTTP %d): %s", rec.Code, rec.Body)
	}
	return out.Response
}

func TestHandlerCountsEachRequestByResult(t *testing.T) {
	allow := func(context.Context, admission.Request) admission.Response { return admission.Allowed("") }
	deny := func(context.Context, admission.Request) admission.Response { return admission.Denied("no") }
	patch := func(_ context.Context, req admission.Request) admission.Response {
		return admission.PatchResponseFromRaw(req.Object.Raw, []byte(`{"apiVersion":"apps/v1","kind":"Job","metadata":{"labels":{"a":"b"}}}`))
	}
	broken := func(context.Context, admission.Request) admission.Response {
		return admission.Errored(http.StatusInternalServerError, context.DeadlineExceeded)
	}
	tests := []struct {
		name    string
		decide  DecideFunc
		result  string
		allowed bool
	}{
		{"allow", allow, resultAllowed, true},
		{"deny", deny, resultDenied, false},
		{"patch", patch, resultPatched, true},
		{"error", broken, resultErrored, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The request names a kind of its own making: it is counted
			// under "other", so a client cannot add series at will.
			kind := "Kind" + tt.name
			counter := requestsTotal.WithLabelValues(tt.name, "other", "CREATE", tt.result)
			before, series := testutil.ToFloat64(counter), testutil.CollectAndCount(requestsTotal)
			hook := &admission.Webhook{Handler: &Handler{Name: tt.name, Decide: tt.decide}}
			resp := review(t, hook, kind, admissionv1.Create)
			if resp.Allowed != tt.allowed || resp.UID != "uid-1" {
				t.Errorf("response allowed=%v uid=%q, want allowed=%v uid=uid-1", resp.Allowed, resp.UID, tt.allowed)
			}
			if got := testutil.ToFloat64(counter) - before; got != 1 {
				t.Errorf("counter %s/other/CREATE/%s grew by %v, want 1", tt.name, tt.result, got)
			}
			review(t, hook, kind+"-again", "FORGED")
			if got := testutil.CollectAndCount(requestsTotal) - series; got != 1 {
				t.Errorf("made-up kinds and operations added %d series, want only %s/other/other/%s", got-1, tt.name, tt.result)
			}
		})
	}
}
