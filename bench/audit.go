package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/source"
)

// auditStats time the background audit's work on existing objects against
// admitting the same objects, on one engine in the same run.
type auditStats struct {
	objects int
	// audit is Engine.Audit on every object, what a full scan evaluates;
	// admit is Engine.Mutate and Engine.Validate on every object, what the
	// webhook evaluates for their CREATEs.
	audit, admit time.Duration
}

// measureAudit copies the example Doris StatefulSets and NodePort Services
// into n objects across 50 namespaces, and times both ways over them twice,
// alternating, keeping the faster of each.
func measureAudit(root string, n int) (*auditStats, error) {
	objects, err := auditObjects(root, n)
	if err != nil {
		return nil, err
	}
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		return nil, err
	}
	eng := engine.NewEngine(source.Offline(nil))
	eng.Load(builtins)
	ctx := context.Background()
	audit := func(obj *unstructured.Unstructured) error {
		_, err := eng.Audit(ctx, obj)
		return err
	}
	admit := func(obj *unstructured.Unstructured) error {
		req, err := eng.RequestForObject(obj)
		if err == nil {
			_, err = eng.Mutate(ctx, req)
		}
		if err == nil {
			_, err = eng.Validate(ctx, req)
		}
		return err
	}
	st := &auditStats{objects: len(objects), audit: time.Duration(1 << 62), admit: time.Duration(1 << 62)}
	for range 2 {
		for _, way := range []struct {
			run  func(*unstructured.Unstructured) error
			best *time.Duration
		}{{audit, &st.audit}, {admit, &st.admit}} {
			heapAfterGC()
			start := time.Now()
			for _, obj := range objects {
				if err := way.run(obj); err != nil {
					return nil, fmt.Errorf("%s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
				}
			}
			*way.best = min(*way.best, time.Since(start))
		}
	}
	return st, nil
}

// auditObjects are n copies of the StatefulSets and Services of the seed
// examples, each under its own name, in namespaces team-00 to team-49.
func auditObjects(root string, n int) ([]*unstructured.Unstructured, error) {
	var examples []*unstructured.Unstructured
	for _, file := range []string{"seed-fe-plain.yaml", "seed-be-plain.yaml", "nodeport-plan.yaml"} {
		docs, err := policies.ReadDocuments(filepath.Join(root, "deploy", "examples", file), nil)
		if err != nil {
			return nil, err
		}
		for _, doc := range docs {
			if kind := doc.Object.GetKind(); kind == "StatefulSet" || kind == "Service" {
				examples = append(examples, doc.Object)
			}
		}
	}
	objects := make([]*unstructured.Unstructured, n)
	for i := range objects {
		obj := examples[i%len(examples)].DeepCopy()
		obj.SetName(fmt.Sprintf("%s-%d", obj.GetName(), i))
		obj.SetNamespace(fmt.Sprintf("team-%02d", i%50))
		objects[i] = obj
	}
	return objects, nil
}

// auditRow compares the audit's evaluation with admission's.
func auditRow(st *auditStats) Row {
	per := func(d time.Duration) string {
		return fmt.Sprintf("%s (%s per object)", d.Round(time.Millisecond), (d / time.Duration(max(1, st.objects))).Round(time.Microsecond))
	}
	return Row{
		ID: "audit/scan", Section: "audit", Scenario: fmt.Sprintf("%d existing objects (seed Doris StatefulSets, NodePort Services), built-in policies", st.objects),
		Measure: "evaluation of one full scan (best of 2)", Ours: per(st.audit),
		Baseline: per(st.admit) + " admitting them",
		Ratio:    ratio(float64(st.audit) / float64(st.admit)), Target: "-", Met: "-",
	}
}
