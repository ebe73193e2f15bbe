package jsonpatch

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"gomodules.xyz/jsonpatch/v2"
)

// CreatePatch is the JSON patch from original to current, the operations
// jsonpatch.CreatePatch (what admission.PatchResponseFromRaw calls) makes
// from the two objects' JSON, computed on the decoded objects instead of
// encoding current and decoding both: numbers compare as the float64 that
// JSON decoding gives, and the values in the patch are written the same. It
// returns false when an object holds what that JSON would not carry the
// same (a string that is not UTF-8, NaN, a Go type JSON decoding never
// gives); the caller then takes the JSON way.
func CreatePatch(original, current map[string]any) ([]jsonpatch.Operation, bool) {
	if !jsonValue(original) || !jsonValue(current) {
		return nil, false
	}
	return diffValues(original, current, "", []jsonpatch.Operation{}), true
}

// jsonKind is what encoding/json decodes v into, as a kind: 'o'bject,
// 'a'rray, 's'tring, 'n'umber, 'b'oolean, or 0 for null.
func jsonKind(v any) byte {
	switch v.(type) {
	case map[string]any:
		return 'o'
	case []any:
		return 'a'
	case string:
		return 's'
	case int64, float64, json.Number:
		return 'n'
	case bool:
		return 'b'
	}
	return 0
}

// jsonValue tells whether v holds only what JSON decoding gives and JSON
// encoding writes back the same.
func jsonValue(v any) bool {
	return everyLeaf(v, func(leaf any) bool {
		switch t := leaf.(type) {
		case nil, bool, int64, map[string]any, []any:
			return true
		case string:
			return utf8.ValidString(t)
		case float64:
			return !math.IsNaN(t) && !math.IsInf(t, 0)
		case json.Number:
			f, err := strconv.ParseFloat(string(t), 64)
			return err == nil && !math.IsInf(f, 0)
		}
		return false
	})
}

// asDecoded is v as encoding/json decodes its JSON into an interface:
// every number a float64.
func asDecoded(v any) any {
	switch t := v.(type) {
	case int64:
		return float64(t)
	case json.Number:
		f, _ := strconv.ParseFloat(string(t), 64)
		return f
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = asDecoded(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = asDecoded(e)
		}
		return out
	}
	return v
}

// rfc6901Encoder escapes a JSON pointer's reference token, as jsonpatch does.
var rfc6901Encoder = strings.NewReplacer("~", "~0", "/", "~1")

func childPointer(path, key string) string {
	return path + "/" + rfc6901Encoder.Replace(key)
}

// diffValues is jsonpatch's handleValues.
func diffValues(av, bv any, p string, patch []jsonpatch.Operation) []jsonpatch.Operation {
	ak, bk := jsonKind(av), jsonKind(bv)
	switch {
	case ak == 0 && bk == 0:
		return patch
	case ak != bk:
		// The type changed: replace it all (a null in current stays).
		return append(patch, jsonpatch.NewOperation("replace", p, asDecoded(bv)))
	}
	switch at := av.(type) {
	case map[string]any:
		bt := bv.(map[string]any)
		for key, b := range bt {
			path := childPointer(p, key)
			a, ok := at[key]
			if !ok {
				patch = append(patch, jsonpatch.NewOperation("add", path, asDecoded(b)))
				continue
			}
			patch = diffValues(a, b, path, patch)
		}
		for key := range at {
			if _, ok := bt[key]; !ok {
				patch = append(patch, jsonpatch.NewOperation("remove", childPointer(p, key), nil))
			}
		}
	case []any:
		bt := bv.([]any)
		n := min(len(at), len(bt))
		for i := len(at) - 1; i >= n; i-- {
			patch = append(patch, jsonpatch.NewOperation("remove", p+"/"+strconv.Itoa(i), nil))
		}
		for i := n; i < len(bt); i++ {
			patch = append(patch, jsonpatch.NewOperation("add", p+"/"+strconv.Itoa(i), asDecoded(bt[i])))
		}
		for i := range n {
			patch = diffValues(at[i], bt[i], p+"/"+strconv.Itoa(i), patch)
		}
	default:
		if asDecoded(av) != asDecoded(bv) {
			patch = append(patch, jsonpatch.NewOperation("replace", p, asDecoded(bv)))
		}
	}
	return patch
}
