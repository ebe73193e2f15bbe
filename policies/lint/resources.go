package lint

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/policytest"
	"github.com/doris-admission/doris-admission/policies/source"
)

// messageFailed is the message a probe validation falls back to when its
// messageExpression fails: Kubernetes then shows the plain message.
const messageFailed = "doris-admission lint: the messageExpression failed"

// tryOnResources runs each policy alone on the sample resources: a
// messageExpression that fails when its validation fails, and a mutation
// that changes its own result again, are findings.
func tryOnResources(ctx context.Context, loaded []policies.Policy, located map[string]location, samples []policies.Document) []Finding {
	var out []Finding
	for _, p := range loaded {
		at := located[key(p)]
		if p.Mutating != nil {
			out = append(out, checkMutations(ctx, p, at, samples)...)
		} else {
			out = append(out, checkMessageExpressions(ctx, p, at, samples)...)
		}
	}
	return out
}

// checkMutations reports the resources a mutating policy changes again when
// it runs on its own result.
func checkMutations(ctx context.Context, p policies.Policy, at location, samples []policies.Document) []Finding {
	eng := engine.NewEngine(source.Offline(samples))
	if l := eng.Load([]policies.Policy{p}); len(l[0].Problems) > 0 {
		return nil // reported as compile problems
	}
	var out []Finding
	for _, doc := range samples {
		got, err := policytest.Admit(ctx, eng, doc.Object, nil)
		if err != nil || got.Mutated == doc.Object {
			continue
		}
		if diff, err := policytest.Reapply(ctx, eng, got.Mutated, nil); err == nil && diff != "" {
			out = append(out, Finding{
				File: at.file(), Line: at.line("spec.mutations"), Policy: p.Kind() + " " + p.Name(), Severity: Error, Field: "spec.mutations",
				Message:    fmt.Sprintf("not idempotent: applied to its own result for %s, it changes it again; the API server may reinvoke it and the object then drifts on every update (- once, + twice):\n%s", describe(doc.Object), indent(diff)),
				Suggestion: "add only what is missing: guard a JSONPatch \"add\" with a check that the item is not there yet (e.g. !c.env.exists(e, e.name == 'X')), or use an ApplyConfiguration, which merges",
			})
		}
	}
	return out
}

// checkMessageExpressions reports, per messageExpression, the first sample
// resource its validation fails on where the messageExpression fails too.
func checkMessageExpressions(ctx context.Context, p policies.Policy, at location, samples []policies.Document) []Finding {
	var out []Finding
	for i, v := range p.Validating.Spec.Validations {
		if v.MessageExpression == "" {
			continue
		}
		// The policy with only this validation, whose plain message says
		// the messageExpression failed.
		probe := p.Validating.DeepCopy()
		probe.Spec.ValidationActions = nil
		probe.Spec.Validations = probe.Spec.Validations[i : i+1]
		probe.Spec.Validations[0].Message = messageFailed
		eng := engine.NewEngine(source.Offline(samples))
		if l := eng.Load([]policies.Policy{{Origin: p.Origin, Validating: probe}}); len(l[0].Problems) > 0 {
			continue // reported as compile problems
		}
		for _, doc := range samples {
			got, err := policytest.Admit(ctx, eng, doc.Object, nil)
			if err != nil || !deniedWith(got.Denials, messageFailed) {
				continue
			}
			field := fmt.Sprintf("spec.validations[%d].messageExpression", i)
			out = append(out, Finding{
				File: at.file(), Line: at.line(field), Policy: p.Kind() + " " + p.Name(), Severity: Error, Field: field,
				Expression: v.MessageExpression,
				Message:    fmt.Sprintf("fails on %s, where its validation fails: the user would get the plain message, or none", describe(doc.Object)),
				Suggestion: "read optional fields with has() or the optional syntax (object.?spec.?replicas.orValue(0)), and convert numbers with string()",
			})
			break
		}
	}
	return out
}

func deniedWith(denials []string, message string) bool {
	for _, d := range denials {
		if strings.Contains(d, message) {
			return true
		}
	}
	return false
}

func describe(obj *unstructured.Unstructured) string {
	if obj.GetNamespace() == "" {
		return obj.GetKind() + " " + obj.GetName()
	}
	return obj.GetKind() + " " + obj.GetNamespace() + "/" + obj.GetName()
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
