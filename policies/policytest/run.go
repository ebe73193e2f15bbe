package policytest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/source"
)

// Result is the outcome of one case.
type Result struct {
	Suite, Case string
	// Failures say how the outcome differs from the expected one; none when
	// the case passed.
	Failures []string
}

// Passed tells whether the outcome was the expected one.
func (r Result) Passed() bool { return len(r.Failures) == 0 }

// Outcome is what the policies made of one request, as the API server
// would see it: mutations first, then validation of the mutated object.
type Outcome struct {
	Allowed bool
	// Denials and Warnings are the messages, each naming its policy;
	// Audited those of the policies whose failures go to the audit log.
	Denials, Warnings, Audited []string
	// Mutated is the object after the mutating policies (the resource itself
	// when none changed it); Applied names the policies that changed it.
	Mutated *unstructured.Unstructured
	Applied []string
}

// Admit runs e's policies on obj as an apply would: CREATE, or UPDATE over old.
func Admit(ctx context.Context, e *engine.Engine, obj, old *unstructured.Unstructured) (*Outcome, error) {
	req, err := e.RequestForUpdate(obj, old)
	if err != nil {
		return nil, err
	}
	out := &Outcome{Allowed: true, Mutated: obj}
	mutated, err := e.Mutate(ctx, req)
	if err != nil {
		// A policy that failed with failurePolicy Fail rejects the request.
		out.Allowed = false
		out.Denials = append(out.Denials, err.Error())
		return out, nil
	}
	out.Warnings = append(out.Warnings, mutated.Warnings...)
	out.Applied = mutated.Applied
	if mutated.Object != nil {
		out.Mutated = mutated.Object
		if req, err = e.RequestForUpdate(mutated.Object, old); err != nil {
			return nil, err
		}
	}
	validated, err := e.Validate(ctx, req)
	if err != nil {
		return nil, err
	}
	for _, v := range validated.Denied {
		out.Allowed = false
		out.Denials = append(out.Denials, v.String())
	}
	for _, v := range validated.Warned {
		out.Warnings = append(out.Warnings, v.String())
	}
	for _, v := range validated.Audited {
		out.Audited = append(out.Audited, v.String())
	}
	return out, nil
}

// Run runs every case of the suite. A suite that cannot be read fails as a
// whole, with one result that says why. With update, a case whose mutated
// object differs from its expect.mutated file rewrites the file instead.
func (s *Suite) Run(ctx context.Context, update bool) []Result {
	run, err := s.start()
	if err != nil {
		return []Result{{Suite: s.Name(), Case: "(loading the suite)", Failures: []string{err.Error()}}}
	}
	results := make([]Result, len(s.Cases))
	for i, c := range s.Cases {
		results[i] = Result{Suite: s.Name(), Case: c.Name, Failures: s.runCase(ctx, run, c, update)}
	}
	return results
}

// suiteRun is a suite's engine and what it runs on.
type suiteRun struct {
	engine    *engine.Engine
	resources []policies.Document
	// cluster is every object the suite has: resources and cluster files.
	cluster source.Objects
}

// start loads the suite's policies into an engine that sees the suite's
// resources and cluster objects as the cluster's.
func (s *Suite) start() (*suiteRun, error) {
	loaded, resources, cluster, err := s.load()
	if err != nil {
		return nil, err
	}
	all := append(slices.Clone(cluster), resources...)
	all = append(all, source.NamespacesFor(all, s.NamespaceLabels)...)
	eng := engine.NewEngine(source.Offline(all))
	var problems []string
	for _, l := range eng.Load(loaded) {
		for _, p := range l.Problems {
			problems = append(problems, fmt.Sprintf("%s %s: %s: %s", l.Kind(), l.Name(), p.Field, p.Summary()))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("policies that do not compile (run doris-admission policy lint on them):\n  %s", strings.Join(problems, "\n  "))
	}
	for _, doc := range cluster {
		eng.Admitted(doc.Object, 0)
	}
	return &suiteRun{engine: eng, resources: resources, cluster: source.OfflineObjects(all)}, nil
}

// runCase returns how the outcome of c differs from what it expects.
func (s *Suite) runCase(ctx context.Context, run *suiteRun, c Case, update bool) []string {
	e := run.engine
	obj, err := findResource(run.resources, c.Resource)
	if err != nil {
		return []string{err.Error()}
	}
	var old *unstructured.Unstructured
	if c.OldResource != "" {
		if old, err = s.readObject(c.OldResource); err != nil {
			return []string{fmt.Sprintf("oldResource: %v", err)}
		}
	}
	got, err := Admit(ctx, e, obj, old)
	if err != nil {
		return []string{err.Error()}
	}
	var failures []string
	if want := *c.Expect.Allowed; got.Allowed != want {
		failures = append(failures, fmt.Sprintf("allowed = %v, want %v%s", got.Allowed, want, listed("denials", got.Denials)))
	}
	failures = append(failures, missing("denial", c.Expect.Messages, got.Denials)...)
	if c.Expect.Warnings != nil {
		if len(*c.Expect.Warnings) == 0 && len(got.Warnings) > 0 {
			failures = append(failures, "want no warnings"+listed("warnings", got.Warnings))
		}
		failures = append(failures, missing("warning", *c.Expect.Warnings, got.Warnings)...)
	}
	if failure := s.checkMutation(c.Expect, obj, got.Mutated, update); failure != "" {
		failures = append(failures, failure)
	}
	if c.Expect.Generated != "" {
		if failure := s.checkGenerated(ctx, run, c.Expect.Generated, got, update); failure != "" {
			failures = append(failures, failure)
		}
	}
	if diff, err := Reapply(ctx, e, got.Mutated, old); err != nil || diff != "" {
		failures = append(failures, fmt.Sprintf("mutating the mutated object again changes it, so a reinvocation would too; make the mutation add only what is missing (- once, + twice):\n%s%v", diff, errOrNil(err)))
	}
	return failures
}

// Reapply mutates the mutated object again and returns a diff of what a
// second pass changes, "" when nothing: the API server may reinvoke the
// webhook, so a second pass must change nothing.
func Reapply(ctx context.Context, e *engine.Engine, mutated, old *unstructured.Unstructured) (string, error) {
	again, err := Admit(ctx, e, mutated, old)
	if err != nil {
		return "", err
	}
	return yamlDiff(mutated, again.Mutated), nil
}

// checkMutation compares the mutated object with the one expected, if any.
func (s *Suite) checkMutation(expect Expect, obj, mutated *unstructured.Unstructured, update bool) string {
	var want *unstructured.Unstructured
	var err error
	switch {
	case expect.Unchanged:
		want = obj
	case expect.Mutated != "":
		if update {
			return s.writeObjects(expect.Mutated, mutated)
		}
		if want, err = s.readObject(expect.Mutated); err != nil {
			return fmt.Sprintf("mutated: %v (policy test --update writes it)", err)
		}
	case expect.Patch != nil:
		if want, err = applyPatch(obj, expect.Patch); err != nil {
			return fmt.Sprintf("patch: %v", err)
		}
	default:
		return ""
	}
	if diff := yamlDiff(want, mutated); diff != "" {
		return "the mutated object differs (- want, + got):\n" + diff
	}
	return ""
}

// checkGenerated compares what the generating policies create beside the
// admitted object with the objects of file; with update it writes them there.
func (s *Suite) checkGenerated(ctx context.Context, run *suiteRun, file string, got *Outcome, update bool) string {
	var generated []*unstructured.Unstructured
	if got.Allowed {
		objs, errs := run.engine.Generate(ctx, got.Mutated)
		if len(errs) > 0 {
			return fmt.Sprintf("generated: %v", errors.Join(errs...))
		}
		for _, g := range engine.Missing(run.cluster, objs) {
			generated = append(generated, g.Object)
		}
	}
	docs, err := policies.ReadDocuments(s.path(file), nil)
	var want []*unstructured.Unstructured
	for _, doc := range docs {
		want = append(want, doc.Object)
	}
	diff := DocumentsDiff(want, generated, "want", "got")
	switch {
	case update && (err != nil || diff != ""):
		return s.writeObjects(file, generated...)
	case err != nil:
		return fmt.Sprintf("generated: %v (policy test --update writes it)", err)
	case diff != "":
		return "the generated objects differ (- want, + got):\n" + diff
	}
	return ""
}

// writeObjects writes objs as YAML documents to a file of the suite; it
// returns what went wrong, if anything.
func (s *Suite) writeObjects(file string, objs ...*unstructured.Unstructured) string {
	text, err := documentsYAML(objs)
	if err == nil {
		err = os.WriteFile(s.path(file), []byte(text), 0o644)
	}
	if err != nil {
		return fmt.Sprintf("writing %s: %v", file, err)
	}
	return ""
}

// readObject reads the one object of a file of the suite.
func (s *Suite) readObject(file string) (*unstructured.Unstructured, error) {
	docs, err := policies.ReadDocuments(s.path(file), nil)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, fmt.Errorf("%s holds %d objects; want exactly one", file, len(docs))
	}
	return docs[0].Object, nil
}

// findResource finds Kind/namespace/name or Kind/name among the resources.
func findResource(resources []policies.Document, ref string) (*unstructured.Unstructured, error) {
	parts := strings.Split(ref, "/")
	kind, name, namespace := parts[0], parts[len(parts)-1], ""
	if len(parts) == 3 {
		namespace = parts[1]
	}
	var found []*unstructured.Unstructured
	for _, doc := range resources {
		o := doc.Object
		if o.GetKind() == kind && o.GetName() == name && (len(parts) != 3 || o.GetNamespace() == namespace || (o.GetNamespace() == "" && namespace == "default")) {
			found = append(found, o)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("resource %s is not among the suite's resources", ref)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("resource %s names %d objects; add the namespace: Kind/namespace/name", ref, len(found))
}

// missing lists the wanted messages that are not part of any of got.
func missing(what string, want, got []string) []string {
	var out []string
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
			out = append(out, fmt.Sprintf("no %s contains %q%s", what, w, listed(what+"s", got)))
		}
	}
	return out
}

// listed is ": the list" on separate lines, or "" when it is empty.
func listed(what string, items []string) string {
	if len(items) == 0 {
		return " (there are no " + what + ")"
	}
	return "; the " + what + " are:\n    " + strings.Join(items, "\n    ")
}

// applyPatch applies a JSON patch to obj.
func applyPatch(obj *unstructured.Unstructured, patch []map[string]any) (*unstructured.Unstructured, error) {
	doc, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, err
	}
	ops, err := json.Marshal(patch)
	if err != nil {
		return nil, err
	}
	decoded, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		return nil, err
	}
	patched, err := decoded.Apply(doc)
	if err != nil {
		return nil, err
	}
	out := &unstructured.Unstructured{}
	return out, out.UnmarshalJSON(patched)
}

// yamlDiff is a unified diff of two objects as YAML, "" when they are equal.
func yamlDiff(want, got *unstructured.Unstructured) string {
	return DocumentsDiff([]*unstructured.Unstructured{want}, []*unstructured.Unstructured{got}, "want", "got")
}

// DocumentsDiff is a unified diff, from wantName to gotName, of two lists
// of objects as YAML documents; "" when they are equal.
func DocumentsDiff(want, got []*unstructured.Unstructured, wantName, gotName string) string {
	a, errA := documentsYAML(want)
	b, errB := documentsYAML(got)
	if errA != nil || errB != nil {
		return fmt.Sprintf("cannot compare: %v %v", errA, errB)
	}
	if a == b {
		return ""
	}
	diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b), FromFile: wantName, ToFile: gotName, Context: 2,
	})
	return diff
}

// documentsYAML writes objs as YAML documents, separated by "---".
func documentsYAML(objs []*unstructured.Unstructured) (string, error) {
	docs := make([]string, len(objs))
	for i, obj := range objs {
		data, err := yaml.Marshal(obj.Object)
		if err != nil {
			return "", err
		}
		docs[i] = string(data)
	}
	return strings.Join(docs, "---\n"), nil
}

// errOrNil prints an error, or nothing for nil.
func errOrNil(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
