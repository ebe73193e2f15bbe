package engine

import (
	"context"
	gojson "encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/jsonpatch"
	"github.com/doris-admission/doris-admission/policies/source"
)

// TestBuiltinMutationsAsKubernetesPatches runs the built-in policies on the
// test resources with this package's JSON patcher and with Kubernetes' one:
// the results are the same.
func TestBuiltinMutationsAsKubernetesPatches(t *testing.T) {
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../builtin/tests/resources/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test resources: %v", err)
	}
	files = append(files, "../../deploy/examples/seed-fe-plain.yaml", "../../deploy/examples/seed-be-plain.yaml")
	for _, file := range files {
		docs, err := policies.ReadDocuments(file, nil)
		if err != nil {
			t.Fatal(err)
		}
		ours := NewEngine(source.Offline(docs))
		ours.Load(builtins)
		theirs := NewEngine(source.Offline(docs))
		theirs.Load(builtins)
		for _, c := range theirs.current.Load().mutating {
			for i, p := range c.Patchers {
				if jp, ok := p.(*jsonpatch.Patcher); ok {
					c.Patchers[i] = patch.NewJSONPatcher(jp.Evaluator)
				}
			}
		}
		for _, doc := range docs {
			if doc.Object.GroupVersionKind() != (schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}) {
				continue
			}
			t.Run(filepath.Base(file)+"/"+doc.Object.GetName(), func(t *testing.T) {
				req, err := ours.RequestForObject(doc.Object)
				if err != nil {
					t.Fatal(err)
				}
				got, gotErr := ours.Mutate(context.Background(), req)
				want, wantErr := theirs.Mutate(context.Background(), req)
				if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
					t.Fatalf("error %v, with Kubernetes' patcher %v", gotErr, wantErr)
				}
				if gotErr != nil {
					return
				}
				if !reflect.DeepEqual(got.Applied, want.Applied) || !reflect.DeepEqual(got.Warnings, want.Warnings) {
					t.Errorf("applied %v warnings %v, with Kubernetes' patcher applied %v warnings %v", got.Applied, got.Warnings, want.Applied, want.Warnings)
				}
				if (got.Object == nil) != (want.Object == nil) || (got.Object != nil && !reflect.DeepEqual(got.Object.Object, want.Object.Object)) {
					g, _ := gojson.Marshal(got.Object)
					w, _ := gojson.Marshal(want.Object)
					t.Errorf("mutated:\n%s\nwith Kubernetes' patcher:\n%s", g, w)
				}
			})
		}
	}
}
