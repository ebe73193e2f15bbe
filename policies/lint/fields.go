package lint

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/api/v1alpha1"
)

// unknownFields reports every field of a policy document that its kind does
// not have: the API server would drop it or reject the policy, and the policy
// would not do what it says.
func unknownFields(doc policies.Document, at location) []Finding {
	var t reflect.Type = reflect.TypeFor[v1alpha1.ValidatingPolicy]()
	if doc.Object.GetKind() == policies.KindMutating {
		t = reflect.TypeFor[v1alpha1.MutatingPolicy]()
	}
	var out []Finding
	walk(doc.Object.Object, t, "", func(path string, known []string) {
		parent, name := splitLast(path)
		f := Finding{
			File: at.file(), Line: at.line(path), Policy: doc.Object.GetKind() + " " + doc.Object.GetName(), Severity: Error,
			Field: path, Message: fmt.Sprintf("%s has no field %q", describeParent(doc.Object.GetKind(), parent), name),
		}
		if closest := closestName(name, known); closest != "" {
			f.Suggestion = fmt.Sprintf("did you mean %q?", closest)
		} else {
			f.Suggestion = "remove it; the fields are: " + strings.Join(known, ", ")
		}
		out = append(out, f)
	})
	return out
}

func describeParent(kind, parent string) string {
	if parent == "" {
		return kind
	}
	return parent
}

var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

// walk follows value along t and calls unknown with the path of every key t
// does not have and the names it does have there.
func walk(value any, t reflect.Type, path string, unknown func(path string, known []string)) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshaler) {
		return // decodes itself: a time, a quantity, raw JSON
	}
	switch v := value.(type) {
	case map[string]any:
		if t.Kind() == reflect.Map {
			for k, item := range v {
				walk(item, t.Elem(), join(path, k), unknown)
			}
			return
		}
		if t.Kind() != reflect.Struct {
			return
		}
		fields := jsonFields(t)
		for _, k := range slices.Sorted(maps.Keys(v)) {
			ft, ok := fields[k]
			if !ok {
				unknown(join(path, k), slices.Sorted(maps.Keys(fields)))
				continue
			}
			walk(v[k], ft, join(path, k), unknown)
		}
	case []any:
		if t.Kind() == reflect.Slice {
			for i, item := range v {
				walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), unknown)
			}
		}
	}
}

// jsonFields maps the JSON names of t's fields to their types, with the
// fields of inlined structs among them.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
		case strings.Contains(opts, "inline") || (f.Anonymous && name == ""):
			maps.Copy(fields, jsonFields(f.Type))
		case name == "":
			fields[f.Name] = f.Type
		default:
			fields[name] = f.Type
		}
	}
	return fields
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// splitLast splits a.b.c into a.b and c.
func splitLast(path string) (string, string) {
	i := strings.LastIndex(path, ".")
	if i < 0 {
		return "", path
	}
	return path[:i], path[i+1:]
}

// closestName is the known name nearest to name, if one is near enough to
// be a typo.
func closestName(name string, known []string) string {
	best, bestDistance := "", len(name)/2+1
	for _, k := range known {
		if d := distance(strings.ToLower(name), strings.ToLower(k)); d < bestDistance {
			best, bestDistance = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	previous := make([]int, len(b)+1)
	for j := range previous {
		previous[j] = j
	}
	for i := 1; i <= len(a); i++ {
		current := make([]int, len(b)+1)
		current[0] = i
		for j := 1; j <= len(b); j++ {
			substitution := previous[j-1]
			if a[i-1] != b[j-1] {
				substitution++
			}
			current[j] = min(previous[j]+1, current[j-1]+1, substitution)
		}
		previous = current
	}
	return previous[len(b)]
}
