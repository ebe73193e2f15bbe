// Package lint finds mistakes in policy files before they are applied: fields
// the policy kinds do not have, expressions that do not compile or name fields
// the matched kinds do not have, expressions whose cost has no bound,
// messageExpressions that fail, and mutations that change an object again
// when applied twice. Every finding has the file and line it is about.
package lint

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	celconfig "k8s.io/apiserver/pkg/apis/cel"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/compile"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/policytest"
	"github.com/doris-admission/doris-admission/policies/source"
)

// Severity of a finding: errors make lint fail.
type Severity string

const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Finding is one thing wrong with a policy.
type Finding struct {
	File string
	Line int
	// Policy is Kind name.
	Policy   string
	Severity Severity
	// Field is the policy's field the finding is about.
	Field      string
	Expression string
	Message    string
	Suggestion string
}

func (f Finding) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d: %s: %s", f.File, f.Line, f.Severity, f.Policy)
	if f.Field != "" {
		fmt.Fprintf(&b, ": %s", f.Field)
	}
	fmt.Fprintf(&b, ": %s", f.Message)
	if f.Expression != "" {
		fmt.Fprintf(&b, "\n    expression: %s", strings.Join(strings.Fields(f.Expression), " "))
	}
	if f.Suggestion != "" {
		fmt.Fprintf(&b, "\n    suggestion: %s", f.Suggestion)
	}
	return b.String()
}

// Cost is the costliest expression of a policy, for the report.
type Cost struct {
	Policy string
	compile.ExpressionCost
}

// Report is what lint found in a set of files.
type Report struct {
	Findings []Finding
	// Costs has, per policy whose matched kinds' schemas are known, its
	// costliest expression.
	Costs []Cost
	// Policies is how many policies were linted.
	Policies int
}

// Errors counts the findings that are errors.
func (r *Report) Errors() int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == Error {
			n++
		}
	}
	return n
}

// Lint checks every policy under path (a file or folder). The resources of
// the test suites under path, and those of resources (files or folders), are
// what messageExpressions and mutations are tried on. A document that cannot
// be read at all is returned as an error; the rest is linted.
func Lint(ctx context.Context, path string, resources []string) (*Report, error) {
	docs, readErr := policies.ReadDocuments(path, nil)
	report := &Report{}
	sources := map[string]*parsedFile{}
	var loaded []policies.Policy
	located := map[string]location{}
	for _, doc := range docs {
		if !policies.IsPolicy(doc.Object.GroupVersionKind()) {
			continue
		}
		src, err := sourceOf(sources, doc.Origin)
		if err != nil {
			return nil, err
		}
		at := location{src: src, index: doc.Index}
		report.Policies++
		report.Findings = append(report.Findings, unknownFields(doc, at)...)
		p, err := policies.PolicyFromDocument(doc)
		if err != nil {
			continue // unknown fields, reported above
		}
		located[key(p)] = at
		loaded = append(loaded, p)
	}
	samples, err := sampleResources(path, resources)
	if err != nil {
		return nil, err
	}
	eng := engine.NewEngine(source.Offline(samples))
	for _, l := range eng.Load(loaded) {
		at := located[key(l.Policy)]
		report.Findings = append(report.Findings, expressionFindings(l, at)...)
		if cost, ok := costliest(l); ok {
			report.Costs = append(report.Costs, Cost{Policy: l.Kind() + " " + l.Name(), ExpressionCost: cost})
		}
	}
	report.Findings = append(report.Findings, tryOnResources(ctx, loaded, located, samples)...)
	slices.SortStableFunc(report.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	return report, readErr
}

func key(p policies.Policy) string { return p.Kind() + "/" + p.Name() }

// sampleResources reads the resources of the suites under path and the
// resource files given; a path without suites is fine.
func sampleResources(path string, files []string) ([]policies.Document, error) {
	var docs []policies.Document
	suites, _ := policytest.Find(path)
	for _, s := range suites {
		files = append(files, s.ResourceFiles()...)
	}
	for _, f := range files {
		found, err := policies.ReadDocuments(f, nil)
		if err != nil {
			return nil, err
		}
		for _, d := range found {
			if !policies.IsPolicy(d.Object.GroupVersionKind()) && d.Object.GetKind() != policytest.Kind {
				docs = append(docs, d)
			}
		}
	}
	return docs, nil
}

// expressionFindings are the compile and type-check problems of a policy and
// its expressions whose cost has no bound.
func expressionFindings(l engine.Loaded, at location) []Finding {
	var out []Finding
	for _, p := range l.Problems {
		out = append(out, Finding{
			File: at.file(), Line: at.line(p.Field), Policy: l.Kind() + " " + l.Name(), Severity: Error,
			Field: p.Field, Expression: p.Expression, Message: firstLine(compile.ExpressionError{Message: p.Message}.Summary()), Suggestion: suggestFor(p.Message),
		})
	}
	for _, c := range l.Costs {
		if !c.Unbounded() {
			continue
		}
		out = append(out, Finding{
			File: at.file(), Line: at.line(c.Field), Policy: l.Kind() + " " + l.Name(), Severity: Warning,
			Field: c.Field, Expression: c.Expression,
			Message: fmt.Sprintf("the estimated cost has no bound: the estimator does not know the size of a list it iterates over; at run time the limit of %s per expression still stops it", compile.FormatCost(celconfig.PerCallLimit)),
			Suggestion: "the estimator knows the sizes of the object's own fields, not those of variables, of parameters without a schema or of function results; " +
				"to give it a bound, iterate over the object's field itself (object.spec.ports.all(...)) rather than a variable made from it",
		})
	}
	return out
}

// costliest is the expression of l with the highest estimate.
func costliest(l engine.Loaded) (compile.ExpressionCost, bool) {
	if len(l.Costs) == 0 {
		return compile.ExpressionCost{}, false
	}
	return slices.MaxFunc(l.Costs, func(a, b compile.ExpressionCost) int { return cmp.Compare(a.Max, b.Max) }), true
}

// suggestFor says how to fix a compiler message.
func suggestFor(message string) string {
	switch {
	case strings.Contains(message, "undefined field"):
		return "check the field's name and where it is: kubectl explain <kind>.<path> lists the fields, e.g. kubectl explain statefulset.spec"
	case strings.Contains(message, "undeclared reference"):
		return "use the variables object, oldObject, request, params, namespaceObject, variables and authorizer, and the functions of the Kubernetes CEL libraries and of doris-admission (see docs/writing-policies.md)"
	case strings.Contains(message, "Syntax error"):
		return "fix the CEL syntax at the line and column shown"
	case strings.Contains(message, "must evaluate to"):
		return "make the expression return the type named: a validation a bool, a messageExpression a string"
	case strings.Contains(message, "found no matching overload"):
		return "the arguments' types do not fit the function or operator; convert them first, e.g. string(x) or int(x)"
	}
	return ""
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
