package playground

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/doris-admission/doris-admission/policies/builtin"
)

// page is the web page: index.html and what it loads.
//
//go:embed page
var page embed.FS

// Options configure the playground's server.
type Options struct {
	// SuitesDir is where saved cases go, one folder each.
	SuitesDir string
	// Timeout bounds one evaluation, and the wait for the one before it;
	// DefaultTimeout when 0.
	Timeout time.Duration
}

// DefaultTimeout is how long a case may take when Options say nothing.
const DefaultTimeout = 10 * time.Second

// maxCaseBytes bounds what the page may send: policies and objects are
// kilobytes; megabytes are a mistake (or an attack on the page's server).
const maxCaseBytes = 1 << 20

// NewHandler serves the page and its API:
//
//	GET  /               the page
//	POST /api/evaluate   a Case, answered with a Result
//	GET  /api/builtins   the built-in policies' YAML, to load into the editor
//	POST /api/save       {"name": ..., "case": Case}: the case saved as a policy test suite
func NewHandler(opts Options) http.Handler {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	s := &server{opts: opts, slot: make(chan struct{}, 1)}
	files, _ := fs.Sub(page, "page")
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(files))
	mux.HandleFunc("POST /api/evaluate", s.evaluate)
	mux.HandleFunc("GET /api/builtins", builtins)
	mux.HandleFunc("POST /api/save", s.save)
	return mux
}

type server struct {
	opts Options
	// slot lets one evaluation run at a time: a page that sends a case per
	// keystroke, or a hostile policy, cannot pile evaluations up.
	slot chan struct{}
}

func (s *server) evaluate(w http.ResponseWriter, r *http.Request) {
	var c Case
	if !readJSON(w, r, &c) {
		return
	}
	res, err := s.run(r.Context(), c)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	writeJSON(w, res)
}

// run evaluates c within the timeout, after the evaluation before it. An
// evaluation that outlives its timeout keeps the slot until it ends (the
// CEL cost limits bound it), so the next ones wait and say why.
func (s *server) run(ctx context.Context, c Case) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	select {
	case s.slot <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("the case before this one is still being evaluated after %s; simplify the policies or try again", s.opts.Timeout)
	}
	type answer struct {
		res *Result
		err error
	}
	done := make(chan answer, 1)
	go func() {
		defer func() { <-s.slot }()
		res, err := Evaluate(ctx, c)
		done <- answer{res, err}
	}()
	select {
	case a := <-done:
		return a.res, a.err
	case <-ctx.Done():
		return nil, fmt.Errorf("evaluating the case took longer than %s; simplify the policies (policy lint reports their costs)", s.opts.Timeout)
	}
}

// builtins answers the built-in policies as one YAML stream.
func builtins(w http.ResponseWriter, _ *http.Request) {
	names, err := fs.Glob(builtin.Policies, "*.yaml")
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	slices.Sort(names)
	var docs []string
	for _, name := range names {
		data, err := fs.ReadFile(builtin.Policies, name)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		docs = append(docs, strings.TrimSpace(string(data)))
	}
	writeJSON(w, map[string]string{"policies": strings.Join(docs, "\n---\n") + "\n"})
}

// saveRequest is what the page sends to save a case.
type saveRequest struct {
	Name string `json:"name"`
	Case Case   `json:"case"`
}

func (s *server) save(w http.ResponseWriter, r *http.Request) {
	var req saveRequest
	if !readJSON(w, r, &req) {
		return
	}
	res, err := s.run(r.Context(), req.Case)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	folder, err := Save(s.opts.SuitesDir, req.Name, req.Case, res)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, map[string]string{"folder": folder, "command": "doris-admission policy test " + folder})
}

// readJSON decodes the request body into v, or answers why it cannot.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	decoder := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCaseBytes))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("the case is larger than %d KiB: the playground takes policies and objects, not whole clusters", maxCaseBytes>>10))
			return false
		}
		writeError(w, http.StatusBadRequest, fmt.Errorf("the request is not a case: %w", err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
