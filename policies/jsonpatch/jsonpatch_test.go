package jsonpatch

import (
	gojson "encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/google/cel-go/cel"
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	kjson "sigs.k8s.io/json"
)

// patchTestObject is what the JSON patch cases apply to.
func patchTestObject(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	var content map[string]any
	doc := `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"x","labels":{"a":"b"},"annotations":{"a/b":"slash","c~d":"tilde"}},
		"spec":{"replicas":1,"list":[1,"two",{"three":3}],"nested":{"k":"v","deep":{"x":[]}},"nul":null,"half":0.5,"empty":{}}}`
	if err := kjson.UnmarshalCaseSensitivePreserveInts([]byte(doc), &content); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: content}
}

// kubernetesPatch applies ops Kubernetes' way.
func kubernetesPatch(obj *unstructured.Unstructured, ops []Op) (runtime.Object, error) {
	versioned := &admission.VersionedAttributes{VersionedKind: obj.GroupVersionKind()}
	versioned.VersionedObject.Set(obj)
	return applyAsKubernetes(patch.Request{
		VersionedAttributes: versioned,
		ObjectInterfaces:    admission.NewObjectInterfacesFromScheme(clientgoscheme.Scheme),
	}, ops)
}

func rawOp(op, path, value string) Op {
	p := Op{Op: op, Path: path}
	if value != "" {
		p.hasValue, p.raw = true, []byte(value)
	}
	return p
}

// TestJSONPatchOnTheMapIsKubernetesPatch applies patches both ways: wherever
// the map way takes a patch, its result is Kubernetes' result, and where
// Kubernetes' way fails the map way must not take it.
func TestJSONPatchOnTheMapIsKubernetesPatch(t *testing.T) {
	cases := [][]Op{
		{},
		{rawOp("add", "/metadata/labels/c", `"d"`)},
		{rawOp("add", "/metadata/labels/a", `"b"`)},
		{rawOp("add", "/spec/list/-", `4`)},
		{rawOp("add", "/spec/list/0", `{"zero":0}`)},
		{rawOp("add", "/spec/list/3", `[1,2]`)},
		{rawOp("add", "/spec/list/4", `1`)},
		{rawOp("add", "/spec/list/01", `1`)},
		{rawOp("add", "/spec/list/-1", `1`)},
		{rawOp("add", "/spec/list/2/three", `33`)},
		{rawOp("add", "/spec/list/2/four", `4`)},
		{rawOp("add", "/spec/list/-/x", `4`)},
		{rawOp("replace", "/spec/missing", `"set"`)},
		{rawOp("replace", "/spec/list/1", `2`)},
		{rawOp("replace", "/spec/list/3", `2`)},
		{rawOp("replace", "/spec/replicas", `1`)},
		{rawOp("remove", "/spec/nested/k", ``)},
		{rawOp("remove", "/spec/nested/zz", ``)},
		{rawOp("remove", "/spec/list/0", ``)},
		{rawOp("remove", "/spec/list/3", ``)},
		{rawOp("add", "/spec/nul/x", `1`)},
		{rawOp("add", "/spec/missing/x", `1`)},
		{rawOp("add", "/spec/replicas/x", `1`)},
		{rawOp("add", "/metadata/annotations/a~1b", `"s"`)},
		{rawOp("add", "/metadata/annotations/c~0d", `"t"`)},
		{rawOp("add", "/spec/nested/deep/x/-", `{"y":1.5}`)},
		{rawOp("add", "/spec/nested/deep/x/-", `2.0`)},
		{rawOp("add", "/spec/nested/deep/x/-", `1e3`)},
		{rawOp("add", "/spec/nested/deep/x/-", `12345678901234567890`)},
		{rawOp("add", "/spec/empty/k", `null`)},
		{rawOp("add", "/kind", `"Deployment"`)},
		{rawOp("remove", "/kind", ``)},
		{rawOp("add", "/apiVersion", `"apps/v2"`)},
		{rawOp("add", "spec/x", `1`)},
		{rawOp("add", "", `{}`)},
		{rawOp("add", "/", `1`)},
		{rawOp("add", "/spec/x", ``)},
		{rawOp("test", "/spec/replicas", `2`)},
		{rawOp("test", "/spec/replicas", `1`), rawOp("add", "/spec/x", `1`)},
		{rawOp("move", "/spec/x", ``)},
		{rawOp("bogus", "/spec/x", `1`)},
		{rawOp("add", "/spec/x", `1`), rawOp("remove", "/spec/x", ``)},
		{rawOp("add", "/spec/x", `{"a":[]}`), rawOp("add", "/spec/x/a/-", `"b"`), rawOp("add", "/spec/x/a/0", `"a"`)},
		{rawOp("add", "/spec/x", `1`), rawOp("add", "/spec/missing/y", `1`)},
		{{Op: "add", Path: "/spec/direct", hasValue: true, value: map[string]any{"a": []any{int64(1), "x", nil, true}}}},
		{{Op: "add", Path: "/spec/t\tab", hasValue: true, value: "x"}},
		{{Op: "add", Path: "/spec/é", hasValue: true, value: "x"}},
	}
	for i, ops := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			obj := patchTestObject(t)
			original := obj.DeepCopy()
			want, wantErr := kubernetesPatch(obj, ops)
			got, ok := applyToMap(nil, obj, ops)
			if !equality.Semantic.DeepEqual(obj, original) {
				t.Fatalf("the object was changed in place")
			}
			if !ok {
				return
			}
			if wantErr != nil {
				t.Fatalf("the map way took a patch Kubernetes refuses (%v)", wantErr)
			}
			if !reflect.DeepEqual(got.(*unstructured.Unstructured).Object, want.(*unstructured.Unstructured).Object) {
				g, _ := gojson.Marshal(got)
				w, _ := gojson.Marshal(want)
				t.Fatalf("map way:\n%s\nKubernetes:\n%s", g, w)
			}
			if (got == runtime.Object(obj)) != equality.Semantic.DeepEqual(original, want) {
				t.Errorf("the map way returned the object itself: %v; Kubernetes' result equals it: %v", got == runtime.Object(obj), equality.Semantic.DeepEqual(original, want))
			}
		})
	}
}

// TestJSONPatchLeavesObjectsThatDoNotRoundTrip checks that objects the JSON
// round trip would change go Kubernetes' way.
func TestJSONPatchLeavesObjectsThatDoNotRoundTrip(t *testing.T) {
	for _, value := range []any{2.0, int(3), []string{"a"}, map[string]any(nil), []any(nil), "\xff"} {
		obj := patchTestObject(t)
		obj.Object["odd"] = value
		if _, ok := applyToMap(nil, obj, nil); ok {
			t.Errorf("an object holding %#v was patched on the map", value)
		}
	}
}

// TestCELToJSONIsKubernetesConversion converts CEL values directly and as
// Kubernetes does (protobuf Value, JSON, decoded by the API machinery).
func TestCELToJSONIsKubernetesConversion(t *testing.T) {
	env, err := cel.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	for _, expr := range []string{
		`'text'`, `true`, `null`, `0`, `-5`, `120`, `9007199254740991`, `-9007199254740991`, `9007199254740992`,
		`[1, 'two', [true, null]]`, `{'a': 1, 'b': {'c': ['d']}}`, `{'a': 1.5}`, `2.0`, `1u`, `b'x'`, `{1: 'a'}`,
		`[]`, `{}`, `duration('1s')`,
	} {
		t.Run(expr, func(t *testing.T) {
			ast, iss := env.Compile(expr)
			if iss.Err() != nil {
				t.Fatal(iss.Err())
			}
			prg, err := env.Program(ast)
			if err != nil {
				t.Fatal(err)
			}
			val, _, err := prg.Eval(cel.NoVars())
			if err != nil {
				t.Fatal(err)
			}
			got, ok := celToJSON(val)
			if !ok {
				return
			}
			native, err := val.ConvertToNative(reflect.TypeFor[*structpb.Value]())
			if err != nil {
				t.Fatalf("converted directly, but Kubernetes' conversion fails: %v", err)
			}
			raw, err := gojson.Marshal(native)
			if err != nil {
				t.Fatal(err)
			}
			var want any
			if _, err := kjson.UnmarshalStrict(raw, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("directly %#v, Kubernetes' way %#v (%s)", got, want, raw)
			}
		})
	}
}
