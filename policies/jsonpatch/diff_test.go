package jsonpatch

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"gomodules.xyz/jsonpatch/v2"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// sortedOps is a patch as sorted JSON lines: jsonpatch's order follows map
// iteration, so only the set of operations is the same from run to run.
func sortedOps(t *testing.T, ops []jsonpatch.Operation) string {
	t.Helper()
	lines := make([]string, len(ops))
	for i := range ops {
		data, err := json.Marshal(&ops[i])
		if err != nil {
			t.Fatal(err)
		}
		lines[i] = string(data)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestCreatePatchIsJSONPatchCreatePatch compares the patch computed on the
// decoded objects with the one jsonpatch computes from their JSON.
func TestCreatePatchIsJSONPatchCreatePatch(t *testing.T) {
	original := `{"apiVersion":"v1","kind":"X","metadata":{"name":"a","labels":{"a/b":"1","c~d":"2"}},
		"spec":{"n":1,"f":1.5,"big":9007199254740993,"s":"x","b":true,"nul":null,"list":[1,{"a":1},[2]],"obj":{"k":"v"}}}`
	for _, current := range []string{
		original,
		`{"apiVersion":"v1","kind":"X","metadata":{"name":"a"}}`,
		`{"apiVersion":"v1","kind":"X","metadata":{"name":"a","labels":{"a/b":"1","c~d":"3","e":"4"}},
		  "spec":{"n":2,"f":1.5,"big":9007199254740993,"s":1,"b":false,"nul":{"x":null},"list":[1,{"a":2,"b":[]},[2,3],4,5],"obj":null,"new":{"deep":[{"x":1e3}]}}}`,
		`{"apiVersion":"v1","kind":"X","metadata":{"name":"a","labels":{}},"spec":{"n":1.0,"f":2,"list":[],"obj":[],"nul":null}}`,
		`{"apiVersion":"v1","kind":"X","metadata":{"name":"a","labels":{"a/b":"1","c~d":"2"}},"spec":{"n":1,"f":1.5,"big":9007199254740994,"s":"x","b":true,"nul":null,"list":[1],"obj":{"k":"v","é":"ü\u2028"}}}`,
	} {
		var a, b map[string]any
		if err := utiljson.Unmarshal([]byte(original), &a); err != nil {
			t.Fatal(err)
		}
		if err := utiljson.Unmarshal([]byte(current), &b); err != nil {
			t.Fatal(err)
		}
		got, ok := CreatePatch(a, b)
		if !ok {
			t.Fatalf("no patch for %s", current)
		}
		encoded, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		want, err := jsonpatch.CreatePatch([]byte(original), encoded)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := sortedOps(t, got), sortedOps(t, want); g != w {
			t.Errorf("for %s\ngot:\n%s\nwant:\n%s", current, g, w)
		}
	}
}

func TestCreatePatchLeavesWhatJSONWouldChange(t *testing.T) {
	for _, odd := range []any{"\xff", int(1), []string{"a"}} {
		if _, ok := CreatePatch(map[string]any{"a": "b"}, map[string]any{"a": odd}); ok {
			t.Errorf("%#v was diffed on the objects", odd)
		}
	}
}
