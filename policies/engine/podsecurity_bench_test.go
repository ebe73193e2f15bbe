package engine

import (
	"context"
	"slices"
	"testing"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/source"
)

// BenchmarkPodSecurity admits the Pod that keeps every Restricted control
// (deploy/examples/pod-security-tests) with the Pod Security Standards
// policies and the built-in ones loaded, as the webhook does for its CREATE:
// Mutate, then Validate. What each Pod of the bench's Pod creates costs in
// evaluation.
func BenchmarkPodSecurity(b *testing.B) {
	var pss []policies.Policy
	for _, f := range []string{"baseline.yaml", "restricted.yaml"} {
		ps, err := policies.ReadPolicies("../../deploy/examples/pod-security/"+f, nil)
		if err != nil {
			b.Fatal(err)
		}
		pss = append(pss, ps...)
	}
	docs, err := policies.ReadDocuments("../../deploy/examples/pod-security-tests/pods.yaml", nil)
	if err != nil {
		b.Fatal(err)
	}
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		b.Fatal(err)
	}
	e := NewEngine(source.Offline(docs))
	e.Load(append(builtins, pss...))
	i := slices.IndexFunc(docs, func(d policies.Document) bool { return d.Object.GetName() == "hardened" })
	if i < 0 {
		b.Fatal("the suite's resources have no Pod hardened")
	}
	req, err := e.RequestForObject(docs[i].Object)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		ctx := WithRequestBudget(context.Background())
		if _, err := e.Mutate(ctx, req); err != nil {
			b.Fatal(err)
		}
		res, err := e.Validate(ctx, req)
		if err != nil || len(res.Denied) > 0 {
			b.Fatalf("the hardened Pod is not admitted: %v %v", err, res.Denied)
		}
	}
}
