package audit

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/source"
	"github.com/doris-admission/doris-admission/watch"
)

// scanObjects are n objects like a cluster's: Services with node ports and
// plain Doris StatefulSets, across 50 namespaces.
func scanObjects(n int) []*unstructured.Unstructured {
	objects := make([]*unstructured.Unstructured, n)
	for i := range objects {
		namespace := fmt.Sprintf("team-%02d", i%50)
		if i%5 == 0 {
			objects[i] = &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "apps/v1", "kind": "StatefulSet",
				"metadata": map[string]any{"name": fmt.Sprintf("fe-%d", i), "namespace": namespace, "uid": fmt.Sprint(i)},
				"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
					"containers": []any{map[string]any{"name": "fe", "image": "apache/doris:fe-2.1.7"}},
				}}},
			}}
			continue
		}
		objects[i] = &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": fmt.Sprintf("svc-%d", i), "namespace": namespace, "uid": fmt.Sprint(i)},
			"spec":     map[string]any{"type": "NodePort", "ports": []any{map[string]any{"port": int64(80), "nodePort": int64(30000 + i%2700)}}},
		}}
	}
	return objects
}

// newBenchScanner is a scanner on the built-in policies, offline.
func newBenchScanner(b *testing.B) *Scanner {
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		b.Fatal(err)
	}
	eng := engine.NewEngine(source.Offline(nil))
	eng.Load(builtins)
	return &Scanner{Engine: eng, objects: map[watch.Key]objectResults{}, dirty: map[string]bool{}}
}

// BenchmarkScan5000 evaluates 5,000 objects as a full scan does and reports
// the time per scan and the memory its results hold, per object.
func BenchmarkScan5000(b *testing.B) {
	objects := scanObjects(5000)
	for b.Loop() {
		s := newBenchScanner(b)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, obj := range objects {
			key := watch.KeyOf(obj.GroupVersionKind(), obj)
			if err := s.record(context.Background(), key, obj); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(objects)), "heap-B/object")
		if len(s.objects) != len(objects) {
			b.Fatalf("recorded %d objects, want %d", len(s.objects), len(objects))
		}
	}
}
