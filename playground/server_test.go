package playground

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/doris-admission/doris-admission/policies/policytest"
)

// post sends body to path and decodes the JSON answer into out.
func post(t *testing.T, h http.Handler, path string, body any, out any) int {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(data)))
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		t.Fatalf("POST %s answered %d, not JSON: %s", path, rec.Code, rec.Body)
	}
	return rec.Code
}

// TestPageAndBuiltins: the page is served, and the built-in policies come
// as one YAML stream the editor can take.
func TestPageAndBuiltins(t *testing.T) {
	h := NewHandler(Options{Timeout: time.Minute})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "policy playground") {
		t.Errorf("GET / answered %d: %.200s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/builtins", nil))
	var answer map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil || strings.Count(answer["policies"], "\nkind: MutatingPolicy") < 5 {
		t.Errorf("GET /api/builtins answered %d, %v: %.300s", rec.Code, err, rec.Body)
	}
}

// TestBadCases: what is not a case, or too large, gets a status and a
// message that says what to fix.
func TestBadCases(t *testing.T) {
	h := NewHandler(Options{Timeout: time.Minute})
	for _, tt := range []struct {
		body   string
		status int
		says   string
	}{
		{`{"policies": 3}`, http.StatusBadRequest, "the request is not a case"},
		{`{"polices": ""}`, http.StatusBadRequest, `polices`},
		{`{"policies": "` + strings.Repeat("x", maxCaseBytes) + `"}`, http.StatusRequestEntityTooLarge, "larger than 1024 KiB"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/evaluate", strings.NewReader(tt.body)))
		if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.says) {
			t.Errorf("%.40s... answered %d %s, want %d saying %q", tt.body, rec.Code, rec.Body, tt.status, tt.says)
		}
	}
}

// TestOneEvaluationAtATime: while a case is being evaluated, the next one
// waits for it, and says so when its own time runs out.
func TestOneEvaluationAtATime(t *testing.T) {
	s := &server{opts: Options{Timeout: 50 * time.Millisecond}, slot: make(chan struct{}, 1)}
	s.slot <- struct{}{} // a case whose evaluation has not ended
	_, err := s.run(context.Background(), Case{})
	if err == nil || !strings.Contains(err.Error(), "the case before this one is still being evaluated") {
		t.Errorf("with the slot taken: %v", err)
	}
	<-s.slot
	s.opts.Timeout = time.Minute
	if _, err := s.run(context.Background(), Case{}); err != nil {
		t.Errorf("with the slot free: %v", err)
	}
}

// TestSavedSuitePasses: a case saved from the page is a policy test suite
// that policy test passes, expectations and all.
func TestSavedSuitePasses(t *testing.T) {
	dir := t.TempDir()
	h := NewHandler(Options{Timeout: time.Minute, SuitesDir: dir})
	c := Case{Builtins: true, Object: seedFE(t), Policies: replicasPolicy("warn-few-replicas", "Warn", 5)}
	var answer map[string]string
	if code := post(t, h, "/api/save", saveRequest{Name: "seed-fe", Case: c}, &answer); code != http.StatusOK {
		t.Fatalf("save answered %d: %v", code, answer)
	}
	suites, err := policytest.Find(answer["folder"])
	if err != nil || len(suites) != 1 {
		t.Fatalf("the saved folder %s holds %d suites: %v", answer["folder"], len(suites), err)
	}
	for _, r := range suites[0].Run(context.Background(), false) {
		if !r.Passed() {
			t.Errorf("the saved case fails policy test: %v", r.Failures)
		}
	}
	if !strings.HasSuffix(answer["command"], "policy test "+answer["folder"]) {
		t.Errorf("the answer's command %q does not run the suite", answer["command"])
	}

	if code := post(t, h, "/api/save", saveRequest{Name: "../up", Case: c}, &answer); code != http.StatusBadRequest || !strings.Contains(answer["error"], "suite name") {
		t.Errorf("a name with a path answered %d %v, want 400 about the name", code, answer)
	}
}
