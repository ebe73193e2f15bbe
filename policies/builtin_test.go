package policies

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files of the built-in policies")

// builtinEngine is an offline engine with the built-in policies only, seeing
// docs as the cluster's objects.
func builtinEngine(t *testing.T, docs ...Document) *Engine {
	t.Helper()
	builtin, err := Builtin(DefaultNamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(OfflineConfig(docs))
	for _, l := range e.Load(builtin) {
		if len(l.Problems) > 0 {
			t.Fatalf("built-in policy %s does not compile: %v", l.Name(), l.Problems)
		}
	}
	return e
}

// mutateObject runs the mutating policies on obj and returns the result
// (obj itself when nothing changed).
func mutateObject(t *testing.T, e *Engine, obj *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	req, err := e.RequestForObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Mutate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Object == nil {
		return obj
	}
	return res.Object
}

// TestBuiltinGolden mutates each fixture and compares it with its reviewed
// golden file; run with -update to rewrite them. Mutating the result again
// must change nothing.
func TestBuiltinGolden(t *testing.T) {
	inputs := map[string]string{
		"seed-fe": "../deploy/examples/seed-fe-plain.yaml",
		"seed-be": "../deploy/examples/seed-be-plain.yaml",
	}
	files, _ := filepath.Glob("testdata/builtin/*.yaml")
	for _, f := range files {
		if !strings.HasSuffix(f, ".golden.yaml") && !strings.HasPrefix(filepath.Base(f), "not-doris") {
			inputs[strings.TrimSuffix(filepath.Base(f), ".yaml")] = f
		}
	}
	for name, input := range inputs {
		t.Run(name, func(t *testing.T) {
			docs, err := ReadDocuments(input, nil)
			if err != nil {
				t.Fatal(err)
			}
			e := builtinEngine(t, docs...)
			var out []byte
			for _, doc := range docs {
				if doc.Object.GetKind() != "StatefulSet" {
					continue
				}
				once := mutateObject(t, e, doc.Object)
				twice := mutateObject(t, e, once)
				if diff := cmp.Diff(once.Object, twice.Object); diff != "" {
					t.Errorf("mutating twice differs from once (-once +twice):\n%s", diff)
				}
				data, err := yaml.Marshal(once.Object)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, data...)
			}
			golden := filepath.Join("testdata", "builtin", name+".golden.yaml")
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./policies -run TestBuiltinGolden -update to write it)", err)
			}
			if diff := cmp.Diff(string(want), string(out)); diff != "" {
				t.Errorf("%s differs from %s (-want +got):\n%s", input, golden, diff)
			}
		})
	}
}

// TestBuiltinLeavesOtherStatefulSetsAlone: a StatefulSet that is not Doris,
// or that opts out, gets no patch at all.
func TestBuiltinLeavesOtherStatefulSetsAlone(t *testing.T) {
	e := builtinEngine(t)
	optedOut := officialFE(t)
	optedOut.SetAnnotations(map[string]string{"doris.apache.org/inject": "false"})
	docs, err := ReadDocuments("testdata/builtin/not-doris.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range []*unstructured.Unstructured{docs[0].Object, optedOut} {
		req, err := e.RequestForObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Mutate(context.Background(), req)
		if err != nil || res.Object != nil {
			t.Errorf("%s was mutated by %v (%v)", obj.GetName(), res.Applied, err)
		}
	}
}

// officialFE is testdata/builtin/official-fe.yaml.
func officialFE(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	docs, err := ReadDocuments("testdata/builtin/official-fe.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return docs[0].Object
}

// TestBuiltinKeepsWhatTheUserSet sets, one at a time, each value the built-in
// policies would inject, and checks the user's value survives.
func TestBuiltinKeepsWhatTheUserSet(t *testing.T) {
	container := []string{"spec", "template", "spec", "containers"}
	tests := []struct {
		name  string
		path  []string // under the Doris container, or from the root when it starts with "spec"
		value any
	}{
		{"env", []string{"env"}, []any{map[string]any{"name": "FE_PORT", "value": "19030"}}},
		{"postStart", []string{"lifecycle", "postStart"}, map[string]any{"exec": map[string]any{"command": []any{"true"}}}},
		{"preStop", []string{"lifecycle", "preStop"}, map[string]any{"exec": map[string]any{"command": []any{"sleep", "5"}}}},
		{"startupProbe", []string{"startupProbe"}, map[string]any{"tcpSocket": map[string]any{"port": int64(1)}}},
		{"livenessProbe", []string{"livenessProbe"}, map[string]any{"tcpSocket": map[string]any{"port": int64(2)}}},
		{"readinessProbe", []string{"readinessProbe"}, map[string]any{"httpGet": map[string]any{"path": "/x", "port": int64(3)}}},
		{"grace period", []string{"spec", "template", "spec", "terminationGracePeriodSeconds"}, int64(90)},
		{"own conf", []string{"volumeMounts"}, []any{map[string]any{"name": "conf", "mountPath": "/opt/apache-doris/fe/conf"}}},
	}
	e := builtinEngine(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := officialFE(t)
			path := tt.path
			if path[0] != "spec" {
				containers, _, _ := unstructured.NestedSlice(obj.Object, container...)
				c := containers[0].(map[string]any)
				if err := unstructured.SetNestedField(c, tt.value, path...); err != nil {
					t.Fatal(err)
				}
				if err := unstructured.SetNestedSlice(obj.Object, containers, container...); err != nil {
					t.Fatal(err)
				}
			} else if err := unstructured.SetNestedField(obj.Object, tt.value, path...); err != nil {
				t.Fatal(err)
			}
			got := mutateObject(t, e, obj)
			var value any
			if path[0] != "spec" {
				containers, _, _ := unstructured.NestedSlice(got.Object, container...)
				value, _, _ = unstructured.NestedFieldNoCopy(containers[0].(map[string]any), path...)
			} else {
				value, _, _ = unstructured.NestedFieldNoCopy(got.Object, path...)
			}
			switch want := tt.value.(type) {
			case []any: // a list the policies append to: the user's items come first, unchanged
				list, _ := value.([]any)
				if len(list) < len(want) {
					t.Fatalf("%v lost the user's items: %v", path, value)
				}
				if diff := cmp.Diff(want, list[:len(want)]); diff != "" {
					t.Errorf("%v changed (-want +got):\n%s", path, diff)
				}
				if tt.name == "env" && strings.Count(toYAML(t, list), "FE_PORT") != 1 {
					t.Errorf("FE_PORT is set twice: %v", list)
				}
			default:
				if diff := cmp.Diff(want, value); diff != "" {
					t.Errorf("%v changed (-want +got):\n%s", path, diff)
				}
			}
			if tt.name == "own conf" && strings.Contains(toYAML(t, got.Object), "doris-admission-conf") {
				t.Errorf("the conf was replaced although the user mounts their own")
			}
		})
	}
}

func toYAML(t *testing.T, v any) string {
	t.Helper()
	data, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestBuiltinWarnings validates risky Doris StatefulSets and checks each
// doris-checks warning appears where it should, and only there.
func TestBuiltinWarnings(t *testing.T) {
	docs, err := ReadDocuments("testdata/builtin/user-conf.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	risky, err := decodeStream("risky.yaml", strings.NewReader(`
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: storage, namespace: db}
spec:
  replicas: 3
  template:
    spec:
      terminationGracePeriodSeconds: 60
      containers: [{name: be, image: "apache/doris:be-2.1.7"}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: meta, namespace: db}
spec:
  replicas: 3
  template:
    spec:
      containers: [{name: fe, image: "apache/doris:fe-2.1.7"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, risky...)
	e := builtinEngine(t, docs...)
	got := map[string][]string{}
	for _, doc := range docs {
		if doc.Object.GetKind() != "StatefulSet" {
			continue
		}
		req, err := e.RequestForObject(mutateObject(t, e, doc.Object))
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Validate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range res.Warned {
			got[doc.Object.GetName()] = append(got[doc.Object.GetName()], w.Field)
		}
	}
	want := map[string][]string{
		"bare-be": {"spec.template.spec.containers"},
		"storage": {"spec.template.spec.terminationGracePeriodSeconds", "metadata.annotations"},
		"meta":    {"spec.replicas"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings by StatefulSet (-want +got):\n%s", diff)
	}
}
