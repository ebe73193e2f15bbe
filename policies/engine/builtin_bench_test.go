package engine

import (
	"context"
	"slices"
	"testing"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/compile"
	"github.com/doris-admission/doris-admission/policies/source"
)

// builtinBenchInput is what each built-in policy is evaluated on: the seed FE
// StatefulSet, and its NodePort Service for the Service policies; both are in
// the documents the engine reads, so the Service's StatefulSet is found.
func builtinBenchInput(b *testing.B) (docs []policies.Document, byKind map[string]policies.Document) {
	b.Helper()
	docs, err := policies.ReadDocuments("../../deploy/examples/seed-fe-plain.yaml", nil)
	if err != nil {
		b.Fatal(err)
	}
	byKind = map[string]policies.Document{}
	for _, doc := range docs {
		byKind[doc.Object.GetKind()] = doc
	}
	return docs, byKind
}

// BenchmarkBuiltinCompile compiles each built-in policy: what a load costs
// per policy (policies are compiled once per generation, never per request).
func BenchmarkBuiltinCompile(b *testing.B) {
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		b.Fatal(err)
	}
	e := NewEngine(source.Offline(nil))
	for _, p := range builtins {
		b.Run(p.Name(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if c := compile.Policy(p, e.envSet, e.checker); len(c.Problems) > 0 {
					b.Fatalf("%s does not compile: %v", p.Name(), c.Problems)
				}
			}
		})
	}
}

// BenchmarkBuiltinEvaluate evaluates each built-in policy alone on the object
// it is written for, as a CREATE through Mutate or Validate: a mutating
// policy on the seed FE StatefulSet (it must change it, or, when it only
// generates, generate an object for it), a validating one on that
// StatefulSet or its NodePort Service.
func BenchmarkBuiltinEvaluate(b *testing.B) {
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		b.Fatal(err)
	}
	docs, byKind := builtinBenchInput(b)
	for _, p := range builtins {
		e := NewEngine(source.Offline(docs))
		e.Load([]policies.Policy{p})
		kind := "StatefulSet"
		if slices.Contains(resourcesOf(p), "services") {
			kind = "Service"
		}
		req, err := e.RequestForObject(byKind[kind].Object)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(p.Name(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if p.Mutating != nil && len(p.Mutating.Spec.Mutations) == 0 {
					generated, errs := e.Generate(context.Background(), byKind[kind].Object)
					if len(errs) > 0 || len(generated) == 0 {
						b.Fatalf("%s generated nothing for the %s: %v", p.Name(), kind, errs)
					}
					continue
				}
				if p.Mutating != nil {
					res, err := e.Mutate(context.Background(), req)
					if err != nil || !slices.Contains(res.Applied, p.Name()) {
						b.Fatalf("%s did not change the %s: %v %v", p.Name(), kind, res, err)
					}
					continue
				}
				res, err := e.Validate(context.Background(), req)
				if err != nil || len(res.Denied) > 0 {
					b.Fatalf("%s denied the %s: %v %v", p.Name(), kind, res, err)
				}
			}
		})
	}
}
