// Package playground is the policy playground: a local web page where a
// policy author edits policies, a resource, parameters and namespace labels,
// and sees after every edit what the server's own engine makes of them — the
// mutated object, the JSON patch, every validation result, the errors of
// every expression at their line and column, the cost estimates, what lint
// says and what export makes of the policies. Nothing is evaluated in the
// browser: the page sends the case, Evaluate answers.
package playground

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/export"
	"github.com/doris-admission/doris-admission/policies/jsonpatch"
	"github.com/doris-admission/doris-admission/policies/lint"
	"github.com/doris-admission/doris-admission/policies/policytest"
	"github.com/doris-admission/doris-admission/policies/source"
)

// Case is what the page sends: the documents in its editors.
type Case struct {
	// Policies are MutatingPolicy and ValidatingPolicy documents.
	Policies string `json:"policies"`
	// Builtins loads the built-in policies before Policies.
	Builtins bool `json:"builtins"`
	// Operation is CREATE (the default), UPDATE or DELETE.
	Operation string `json:"operation,omitempty"`
	// Object is the resource; OldObject the object before an UPDATE or
	// the one a DELETE removes.
	Object    string `json:"object"`
	OldObject string `json:"oldObject,omitempty"`
	// Params are objects the cluster holds: parameter objects, Namespaces,
	// Services.
	Params string `json:"params,omitempty"`
	// NamespaceLabels are the labels of the namespaces Params does not define.
	NamespaceLabels map[string]string `json:"namespaceLabels,omitempty"`
}

// The editors a Problem may point into.
const (
	EditorPolicies  = "policies"
	EditorObject    = "object"
	EditorOldObject = "oldObject"
	EditorParams    = "params"
)

// Problem is something wrong at a place in an editor: line and column are
// 1-based, 0 when unknown.
type Problem struct {
	Editor   string `json:"editor"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Severity string `json:"severity"`
	Policy   string `json:"policy,omitempty"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message"`
}

// Cost is the estimated worst-case cost of one expression.
type Cost struct {
	Policy string `json:"policy"`
	Field  string `json:"field"`
	Line   int    `json:"line"`
	// Cost is the estimate, "unbounded" when the size of what the expression
	// iterates over is unknown; Limit what one expression may cost.
	Cost  string `json:"cost"`
	Limit string `json:"limit"`
	Over  bool   `json:"over"`
}

// Result is what the engine made of a case.
type Result struct {
	// Allowed tells whether the API server would admit the request.
	Allowed bool `json:"allowed"`
	// Denials, Warnings and Audited (the failures that go to the audit
	// log) name their policies; Applied are the mutating policies that
	// changed the object.
	Denials  []string `json:"denials"`
	Warnings []string `json:"warnings"`
	Audited  []string `json:"audited"`
	Applied  []string `json:"applied"`
	// Mutated is the object after the mutating policies, Diff a unified
	// diff from the object to it and Patch the JSON patch the API server
	// would get; all empty when nothing changed it.
	Mutated string `json:"mutated,omitempty"`
	Diff    string `json:"diff,omitempty"`
	Patch   string `json:"patch,omitempty"`
	// Problems are the documents that cannot be read, the expressions that
	// do not compile and what lint finds, each at its place.
	Problems []Problem `json:"problems"`
	Costs    []Cost    `json:"costs"`
	// Export is what policy export makes of the policies of the Policies
	// editor; NotExported says why the others are not.
	Export      string   `json:"export,omitempty"`
	NotExported []string `json:"notExported"`
}

// Evaluate runs the case through the engine, as the webhook and policy test
// would. It fails only when the case cannot be evaluated at all; what is
// wrong in the documents is in Result.Problems.
func Evaluate(ctx context.Context, c Case) (*Result, error) {
	dir, err := os.MkdirTemp("", "doris-admission-playground-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	res := &Result{Problems: []Problem{}, Costs: []Cost{}, NotExported: []string{}, Denials: []string{}, Warnings: []string{}, Audited: []string{}, Applied: []string{}}
	in := readCase(c, res)
	if err := lintPolicies(ctx, dir, c, in, res); err != nil {
		return nil, err
	}
	exportPolicies(in.policies, res)
	eng, err := load(c, in, res)
	if err != nil || in.object == nil && in.oldObject == nil {
		return res, err
	}
	return res, admit(ctx, eng, c, in, res)
}

// input is the case's documents, read.
type input struct {
	policies    []policies.Policy
	policyNodes *documentNodes
	// readable is the policies editor's text with what YAML cannot parse
	// blanked: what lint reads.
	readable          string
	object, oldObject *unstructured.Unstructured
	params            []policies.Document
}

// readCase reads the documents of c; what cannot be read is a problem.
func readCase(c Case, res *Result) input {
	var in input
	in.readable = readableOnly(c.Policies)
	in.policyNodes = parseNodes(in.readable)
	docs, err := policies.DecodeStream(EditorPolicies, strings.NewReader(c.Policies))
	res.Problems = append(res.Problems, documentProblems(EditorPolicies, c.Policies, err)...)
	for _, doc := range docs {
		p, err := policies.PolicyFromDocument(doc)
		if err != nil {
			res.Problems = append(res.Problems, documentProblems(EditorPolicies, c.Policies, err)...)
			continue
		}
		in.policies = append(in.policies, p)
	}
	in.object = singleObject(EditorObject, c.Object, res)
	in.oldObject = singleObject(EditorOldObject, c.OldObject, res)
	in.params, err = policies.DecodeStream(EditorParams, strings.NewReader(c.Params))
	res.Problems = append(res.Problems, documentProblems(EditorParams, c.Params, err)...)
	return in
}

// singleObject reads the one object of an editor, nil when it is empty.
func singleObject(editor, text string, res *Result) *unstructured.Unstructured {
	docs, err := policies.DecodeStream(editor, strings.NewReader(text))
	res.Problems = append(res.Problems, documentProblems(editor, text, err)...)
	if len(docs) > 1 {
		res.problem(&Problem{Editor: editor, Line: documentLine(text, 2), Severity: "error", Message: fmt.Sprintf("%d documents: the resource is one object", len(docs))})
	}
	if len(docs) == 0 {
		return nil
	}
	return docs[0].Object
}

// lintPolicies runs policy lint on the policies, tried on the object, and
// turns its findings into problems at their places in the policies editor.
func lintPolicies(ctx context.Context, dir string, c Case, in input, res *Result) error {
	if len(in.policies) == 0 {
		return nil
	}
	file := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(file, []byte(in.readable), 0o600); err != nil {
		return err
	}
	var resources []string
	if c.Object != "" && in.object != nil {
		objectFile := filepath.Join(dir, "object.yaml")
		if err := os.WriteFile(objectFile, []byte(c.Object), 0o600); err != nil {
			return err
		}
		resources = append(resources, objectFile)
	}
	report, err := lint.Lint(ctx, file, resources)
	if report == nil {
		// A document YAML cannot parse stops lint; it is a problem already.
		message := strings.ReplaceAll(err.Error(), file+": ", "")
		res.problem(&Problem{Editor: EditorPolicies, Severity: "warning", Message: "policy lint did not run: " + message})
		return nil
	}
	for _, f := range report.Findings {
		line, column := in.policyNodes.position(f.Policy, f.Field, f.Message, f.Line)
		res.problem(&Problem{Editor: EditorPolicies, Line: line, Column: column, Severity: string(f.Severity), Policy: f.Policy, Field: f.Field, Message: findingMessage(f)})
	}
	return nil
}

// findingMessage is a lint finding's message with its suggestion.
func findingMessage(f lint.Finding) string {
	if f.Suggestion == "" {
		return f.Message
	}
	return f.Message + " (" + f.Suggestion + ")"
}

// exportPolicies puts what policy export makes of the policies in res.
func exportPolicies(list []policies.Policy, res *Result) {
	var out strings.Builder
	for _, e := range export.Export(list) {
		if e.NotExported != "" {
			res.NotExported = append(res.NotExported, e.Explanation())
			continue
		}
		data, err := e.YAML()
		if err != nil {
			res.NotExported = append(res.NotExported, fmt.Sprintf("%s %s: %v", e.Policy.Kind(), e.Policy.Name(), err))
			continue
		}
		if out.Len() > 0 {
			out.WriteString("---\n")
		}
		out.Write(data)
	}
	res.Export = out.String()
}

// load is an engine with the policies (and the built-in ones, if asked
// for) that sees the params and the object as the cluster's; the cost
// estimates of the Policies editor's expressions go to res.
func load(c Case, in input, res *Result) (*engine.Engine, error) {
	var all []policies.Policy
	if c.Builtins {
		builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
		if err != nil {
			return nil, err
		}
		all = append(all, builtins...)
	}
	all = append(all, in.policies...)
	cluster := append([]policies.Document(nil), in.params...)
	for _, obj := range []*unstructured.Unstructured{in.object, in.oldObject} {
		if obj != nil {
			cluster = append(cluster, policies.Document{Origin: EditorObject, Object: obj})
			break
		}
	}
	cluster = append(cluster, source.NamespacesFor(cluster, c.NamespaceLabels)...)
	eng := engine.NewEngine(source.Offline(cluster))
	for _, l := range eng.Load(all) {
		if l.Origin == policies.OriginBuiltin {
			continue
		}
		for _, cost := range l.Costs {
			line, _ := in.policyNodes.position(l.Kind()+" "+l.Name(), cost.Field, "", 0)
			res.Costs = append(res.Costs, Cost{
				Policy: l.Kind() + " " + l.Name(), Field: cost.Field, Line: line,
				Cost: lint.ReadableCost(cost.Max), Limit: lint.ReadableCost(celconfig.PerCallLimit), Over: cost.Max > celconfig.PerCallLimit,
			})
		}
	}
	for _, doc := range in.params {
		eng.Admitted(doc.Object, 0)
	}
	return eng, nil
}

// admit runs the request through eng: mutation, then validation of the
// mutated object, as the API server would.
func admit(ctx context.Context, eng *engine.Engine, c Case, in input, res *Result) error {
	operation := strings.ToUpper(c.Operation)
	switch {
	case operation == "DELETE":
		return deny(ctx, eng, in.oldObject, res)
	case operation == "UPDATE" && in.oldObject == nil:
		res.problem(&Problem{Editor: EditorOldObject, Severity: "error", Message: "an UPDATE needs the old object: paste the object as it was before the change"})
		return nil
	case operation == "UPDATE":
		return mutateAndValidate(ctx, eng, in.object, in.oldObject, res)
	case operation == "" || operation == "CREATE":
		return mutateAndValidate(ctx, eng, in.object, nil, res)
	}
	res.problem(&Problem{Editor: EditorObject, Severity: "error", Message: fmt.Sprintf("operation %q: choose CREATE, UPDATE or DELETE", c.Operation)})
	return nil
}

// mutateAndValidate admits obj (over old, for an UPDATE).
func mutateAndValidate(ctx context.Context, eng *engine.Engine, obj, old *unstructured.Unstructured, res *Result) error {
	if obj == nil {
		res.problem(&Problem{Editor: EditorObject, Severity: "error", Message: "the resource is empty: paste the object the request creates or updates"})
		return nil
	}
	out, err := policytest.Admit(ctx, eng, obj, old)
	if err != nil {
		res.problem(&Problem{Editor: EditorObject, Severity: "error", Message: err.Error()})
		return nil
	}
	res.Allowed, res.Denials, res.Warnings = out.Allowed, append(res.Denials, out.Denials...), append(res.Warnings, out.Warnings...)
	res.Applied, res.Audited = append(res.Applied, out.Applied...), append(res.Audited, out.Audited...)
	if out.Mutated == nil || out.Mutated == obj {
		return nil
	}
	return res.mutated(obj, out.Mutated)
}

// deny validates the DELETE of old.
func deny(ctx context.Context, eng *engine.Engine, old *unstructured.Unstructured, res *Result) error {
	if old == nil {
		res.problem(&Problem{Editor: EditorOldObject, Severity: "error", Message: "a DELETE needs the old object: paste the object being deleted"})
		return nil
	}
	req, err := eng.RequestForDelete(old)
	if err != nil {
		res.problem(&Problem{Editor: EditorOldObject, Severity: "error", Message: err.Error()})
		return nil
	}
	validated, err := eng.Validate(ctx, req)
	if err != nil {
		return err
	}
	res.Allowed = len(validated.Denied) == 0
	for _, v := range validated.Denied {
		res.Denials = append(res.Denials, v.String())
	}
	for _, v := range validated.Warned {
		res.Warnings = append(res.Warnings, v.String())
	}
	for _, v := range validated.Audited {
		res.Audited = append(res.Audited, v.String())
	}
	return nil
}

// mutated records the mutated object, its diff from obj and the JSON patch.
func (res *Result) mutated(obj, mutated *unstructured.Unstructured) error {
	data, err := yaml.Marshal(mutated.Object)
	if err != nil {
		return err
	}
	res.Mutated = string(data)
	res.Diff = policytest.DocumentsDiff([]*unstructured.Unstructured{obj}, []*unstructured.Unstructured{mutated}, "object", "mutated")
	ops, ok := jsonpatch.CreatePatch(obj.Object, mutated.Object)
	if !ok {
		return nil
	}
	patch, err := json.MarshalIndent(ops, "", "  ")
	if err != nil {
		return err
	}
	res.Patch = string(patch)
	return nil
}

// problem adds p, if any.
func (res *Result) problem(p *Problem) {
	if p != nil {
		res.Problems = append(res.Problems, *p)
	}
}
