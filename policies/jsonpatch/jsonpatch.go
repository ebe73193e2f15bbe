package jsonpatch

import (
	"context"
	gojson "encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"google.golang.org/protobuf/types/known/structpb"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	"k8s.io/apiserver/pkg/cel/mutation"
	"k8s.io/apiserver/pkg/cel/mutation/dynamic"
	"k8s.io/utils/ptr"
	kjson "sigs.k8s.io/json"
)

// Patcher applies a JSONPatch mutation with the result Kubernetes'
// patch.NewJSONPatcher gives, which encodes the whole object to JSON,
// applies the patch to the text and decodes it again, for every mutation of
// every policy. This one does that only where the result could differ from
// working on the object's map: an empty patch returns the object as it is,
// and add, replace and remove are applied to a copy of the map. Anything
// else (move, copy, test, negative or "-" indexes in the middle of a path,
// a value the round trip would change, an operation that fails) takes
// Kubernetes' way, so results and error messages stay the same.
type Patcher struct {
	Evaluator plugincel.MutatingEvaluator
}

// NewPatcher applies the JSONPatch mutation evaluator returns.
func NewPatcher(evaluator plugincel.MutatingEvaluator) patch.Patcher {
	return &Patcher{evaluator}
}

// Op is one evaluated JSONPatch operation.
type Op struct {
	Op, Path, From string
	// hasValue is set when the operation has a value: either its JSON in
	// raw, as Kubernetes makes it, or value, what decoding that JSON gives,
	// when it was converted directly.
	hasValue bool
	raw      []byte
	value    any
}

// json is the operation's value as JSON, as Kubernetes puts it in the patch.
func (op Op) json() ([]byte, error) {
	if op.raw != nil {
		return op.raw, nil
	}
	return gojson.Marshal(op.value)
}

// Patch implements patch.Patcher.
func (p *Patcher) Patch(ctx context.Context, r patch.Request, budget int64) (runtime.Object, error) {
	obj, _, err := p.PatchOps(ctx, r, budget, nil)
	return obj, err
}

// PatchOps is Patch, and the operations it applied when the object changed
// (none when it did not): the caller need not compare. memo, when not nil,
// is the request's: what it learnt of the objects serves the next patch.
func (p *Patcher) PatchOps(ctx context.Context, r patch.Request, budget int64, memo *Memo) (runtime.Object, []Op, error) {
	admissionRequest := plugincel.CreateAdmissionRequest(
		r.VersionedAttributes.Attributes,
		metav1.GroupVersionResource(r.MatchedResource),
		metav1.GroupVersionKind(r.VersionedAttributes.VersionedKind))
	if errs := p.Evaluator.CompilationErrors(); len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	eval, _, err := p.Evaluator.ForInput(ctx, r.VersionedAttributes, admissionRequest, r.OptionalVariables, r.Namespace, budget)
	if err != nil {
		return nil, nil, err
	}
	if eval.Error != nil {
		return nil, nil, eval.Error
	}
	ops, err := patchOps(eval.EvalResult)
	if err != nil {
		return nil, nil, err
	}
	before := r.VersionedAttributes.VersionedObject.Object()
	if u, ok := before.(*unstructured.Unstructured); ok {
		if out, ok := applyToMap(memo, u, ops); ok {
			return out, appliedOps(out != before, ops), nil
		}
	}
	obj, err := applyAsKubernetes(r, ops)
	if err != nil {
		return nil, nil, err
	}
	return obj, appliedOps(obj != before && !equality.Semantic.DeepEqual(before, obj), ops), nil
}

// appliedOps is ops when they changed the object, else nil.
func appliedOps(changed bool, ops []Op) []Op {
	if !changed {
		return nil
	}
	return ops
}

// patchOps reads the operations of an evaluated JSONPatch expression, as
// Kubernetes does (k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch,
// Copyright 2024 The Kubernetes Authors, Apache License 2.0).
func patchOps(result any) ([]Op, error) {
	iter, ok := result.(traits.Lister)
	if !ok {
		return nil, fmt.Errorf("type mismatch: JSONPatchType.expression should evaluate to array")
	}
	var ops []Op
	for it := iter.Iterator(); it.HasNext() == types.True; {
		v := it.Next()
		patchObj, err := v.ConvertToNative(reflect.TypeFor[*mutation.JSONPatchVal]())
		if err != nil {
			return nil, fmt.Errorf("type mismatch: JSONPatchType.expression should evaluate to array of JSONPatch: %w", err)
		}
		op, ok := patchObj.(*mutation.JSONPatchVal)
		if !ok {
			return nil, fmt.Errorf("type mismatch: JSONPatchType.expression should evaluate to array of JSONPatch, got element of %T", patchObj)
		}
		out := Op{Op: op.Op, Path: op.Path, From: op.From, hasValue: op.Val != nil}
		if op.Val != nil {
			if objVal, ok := op.Val.(*dynamic.ObjectVal); ok {
				if err := objVal.CheckTypeNamesMatchFieldPathNames(); err != nil {
					return nil, fmt.Errorf("type mismatch: %w", err)
				}
			}
			if value, ok := celToJSON(op.Val); ok {
				out.value = value
				ops = append(ops, out)
				continue
			}
			v, err := op.Val.ConvertToNative(reflect.TypeFor[*structpb.Value]())
			if err != nil {
				return nil, fmt.Errorf("JSONPath valueExpression evaluated to a type that could not marshal to JSON: %w", err)
			}
			b, err := gojson.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("JSONPath valueExpression evaluated to a type that could not marshal to JSON: %w", err)
			}
			out.raw = b
		}
		ops = append(ops, out)
	}
	return ops, nil
}

// maxJSONInt is the largest int CEL converts to a JSON number rather than a string.
const maxJSONInt = 1<<53 - 1

// celToJSON converts a CEL value of the kinds JSON patches carry (strings,
// booleans, null, ints CEL gives JSON as numbers, and lists and maps with
// string keys of those) to what Kubernetes' conversion gives once its JSON
// (protobuf Value, protojson) is decoded: ints become int64 (a float64 that
// prints as that integer), the rest the obvious Go values. False for any
// other value: the caller then converts it as Kubernetes does.
func celToJSON(v ref.Val) (any, bool) {
	switch t := v.(type) {
	case types.String:
		return string(t), utf8.ValidString(string(t))
	case types.Bool:
		return bool(t), true
	case types.Null:
		return nil, true
	case types.Int:
		if t < -maxJSONInt || t > maxJSONInt {
			return nil, false
		}
		return int64(t), true
	}
	switch v.Type() {
	case types.ListType:
		list, ok := v.(traits.Lister)
		if !ok {
			return nil, false
		}
		size, ok := list.Size().(types.Int)
		if !ok {
			return nil, false
		}
		out := make([]any, 0, int(size))
		for it := list.Iterator(); it.HasNext() == types.True; {
			e, ok := celToJSON(it.Next())
			if !ok {
				return nil, false
			}
			out = append(out, e)
		}
		return out, true
	case types.MapType:
		m, ok := v.(traits.Mapper)
		if !ok {
			return nil, false
		}
		out := map[string]any{}
		for it := m.Iterator(); it.HasNext() == types.True; {
			key := it.Next()
			name, ok := key.(types.String)
			if !ok || !utf8.ValidString(string(name)) {
				return nil, false
			}
			value, found := m.Find(key)
			if !found {
				return nil, false
			}
			e, ok := celToJSON(value)
			if !ok {
				return nil, false
			}
			out[string(name)] = e
		}
		return out, true
	}
	return nil, false
}

// applyAsKubernetes is Kubernetes' way: the object to JSON, the patch
// applied to the text, the text decoded into a new object.
func applyAsKubernetes(r patch.Request, ops []Op) (runtime.Object, error) {
	patchObj := jsonpatch.Patch{}
	for _, op := range ops {
		resultOp := jsonpatch.Operation{}
		resultOp["op"] = ptr.To(gojson.RawMessage(strconv.Quote(op.Op)))
		resultOp["path"] = ptr.To(gojson.RawMessage(strconv.Quote(op.Path)))
		if len(op.From) > 0 {
			resultOp["from"] = ptr.To(gojson.RawMessage(strconv.Quote(op.From)))
		}
		if op.hasValue {
			raw, err := op.json()
			if err != nil {
				return nil, fmt.Errorf("JSONPath valueExpression evaluated to a type that could not marshal to JSON: %w", err)
			}
			resultOp["value"] = ptr.To[gojson.RawMessage](raw)
		}
		patchObj = append(patchObj, resultOp)
	}
	o := r.ObjectInterfaces
	jsonSerializer := json.NewSerializerWithOptions(json.DefaultMetaFactory, o.GetObjectCreater(), o.GetObjectTyper(), json.SerializerOptions{Pretty: false, Strict: true})
	objJS, err := runtime.Encode(jsonSerializer, r.VersionedAttributes.VersionedObject.Object())
	if err != nil {
		return nil, fmt.Errorf("failed to create JSON patch: %w", err)
	}
	patchedJS, err := patchObj.Apply(objJS)
	if err != nil {
		if errors.Is(err, jsonpatch.ErrTestFailed) {
			// If a json patch fails a test operation, the patch must not be applied
			return r.VersionedAttributes.VersionedObject.Object(), nil
		}
		return nil, fmt.Errorf("JSON Patch: %w", err)
	}
	var newVersionedObject runtime.Object
	if _, ok := r.VersionedAttributes.VersionedObject.Object().(*unstructured.Unstructured); ok {
		newVersionedObject = &unstructured.Unstructured{}
	} else {
		newVersionedObject, err = o.GetObjectCreater().New(r.VersionedAttributes.VersionedKind)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
	}
	if newVersionedObject, _, err = jsonSerializer.Decode(patchedJS, nil, newVersionedObject); err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return newVersionedObject, nil
}

// applyToMap applies ops to a copy of u's map and returns it; false when the
// result could differ from Kubernetes' way, which must then be taken. When
// the patch changes nothing it returns u itself. memo, when there is one,
// remembers which objects round-trip through JSON unchanged.
func applyToMap(memo *Memo, u *unstructured.Unstructured, ops []Op) (runtime.Object, bool) {
	// Kubernetes' way decodes into an object that must have a kind.
	if u.GroupVersionKind().Kind == "" {
		return nil, false
	}
	for _, op := range ops {
		if !simpleOp(op) {
			return nil, false
		}
	}
	if !memo.roundTripsUnchanged(u) {
		return nil, false
	}
	if len(ops) == 0 {
		return u, true
	}
	root := u.Object
	for _, op := range ops {
		var ok bool
		if root, ok = applyOp(root, op); !ok {
			return nil, false
		}
	}
	if jsonEqual(u.Object, root) {
		return u, true
	}
	out := &unstructured.Unstructured{Object: root}
	// The values applyOp put in round-trip: it checked them.
	memo.remember(out, true)
	return out, true
}

// Memo remembers, for one request, which objects round-trip through JSON
// unchanged, so each is walked once. The zero Memo is ready to use, and a
// nil one remembers nothing. The policies of a request are evaluated one
// after the other, so it needs no lock.
type Memo struct {
	roundTrips map[*unstructured.Unstructured]bool
}

// roundTripsUnchanged tells whether u round-trips through JSON unchanged
// (see RoundTrips), walking it once per request.
func (m *Memo) roundTripsUnchanged(u *unstructured.Unstructured) bool {
	if m == nil {
		return RoundTrips(u.Object)
	}
	if ok, known := m.roundTrips[u]; known {
		return ok
	}
	ok := RoundTrips(u.Object)
	m.remember(u, ok)
	return ok
}

func (m *Memo) remember(u *unstructured.Unstructured, roundTrips bool) {
	if m == nil {
		return
	}
	if m.roundTrips == nil {
		m.roundTrips = map[*unstructured.Unstructured]bool{}
	}
	m.roundTrips[u] = roundTrips
}

// jsonEqual is equality.Semantic.DeepEqual for values that round-trip
// through JSON (see RoundTrips): same types, same values. Maps and lists
// that are the same, shared by both, are not walked.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		if reflect.ValueOf(x).UnsafePointer() == reflect.ValueOf(y).UnsafePointer() {
			return true
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !jsonEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		if len(x) > 0 && &x[0] == &y[0] {
			return true
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	default:
		return false
	}
}

// simpleOp tells whether op is an add, replace or remove this file applies:
// a path that the JSON text of Kubernetes' way carries unchanged, below the
// root and not at the object's kind or apiVersion, and for add and replace a
// value.
func simpleOp(op Op) bool {
	switch op.Op {
	case "add", "replace":
		if !op.hasValue {
			return false
		}
	case "remove":
	default:
		return false
	}
	if !strings.HasPrefix(op.Path, "/") || !quotesAsJSON(op.Path) {
		return false
	}
	top, _, _ := strings.Cut(op.Path[1:], "/")
	top = PointerToken(top)
	return top != "kind" && top != "apiVersion"
}

// quotesAsJSON tells whether strconv.Quote(s), which Kubernetes puts in the
// patch, is JSON for s: valid UTF-8 of printable characters only.
func quotesAsJSON(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}

// pointerDecoder decodes a JSON pointer's reference token (RFC 6901), as the
// JSON patch library does.
var pointerDecoder = strings.NewReplacer("~1", "/", "~0", "~")

// PointerToken is a JSON pointer's reference token decoded; most have
// nothing to decode, and the replacer allocates even then.
func PointerToken(token string) string {
	if !strings.Contains(token, "~") {
		return token
	}
	return pointerDecoder.Replace(token)
}

// applyOp applies one simple operation to root and returns the new root;
// false when it does not apply as written (Kubernetes' way then reports the
// error). root is left as it is: the maps and lists on the operation's path
// are copied, everything else is shared with root. Nothing changes an
// object's maps in place while the policies evaluate, and Mutate returns a
// deep copy.
func applyOp(root map[string]any, op Op) (map[string]any, bool) {
	value, ok := opValue(op)
	if !ok {
		return nil, false
	}
	parts := strings.Split(op.Path[1:], "/")
	newRoot := maps.Clone(root)
	container, set, ok := copyPath(newRoot, parts[:len(parts)-1])
	if !ok {
		return nil, false
	}
	key := PointerToken(parts[len(parts)-1])
	switch c := container.(type) {
	case map[string]any:
		ok = applyInMap(c, op.Op, key, value)
	case []any:
		ok = applyInList(c, op.Op, key, value, set)
	default:
		ok = false
	}
	if !ok {
		return nil, false
	}
	return newRoot, true
}

// opValue is the value op sets, converted as Kubernetes does: its JSON
// decoded as the API machinery decodes the patched object.
func opValue(op Op) (any, bool) {
	if op.Op == "remove" || op.raw == nil {
		return op.value, true
	}
	var value any
	strict, err := kjson.UnmarshalStrict(op.raw, &value)
	if err != nil || len(strict) > 0 || !RoundTrips(value) {
		return nil, false
	}
	return value, true
}

// copyPath copies the maps and lists along path from root, and returns the
// last (the container the operation changes) and how to replace it in its
// parent, for lists that grow or shrink.
func copyPath(root map[string]any, path []string) (container any, set func(any), ok bool) {
	container, set = root, func(any) {}
	for _, part := range path {
		key := PointerToken(part)
		switch c := container.(type) {
		case map[string]any:
			next, ok := shallowCopy(c[key])
			if !ok {
				return nil, nil, false
			}
			c[key] = next
			set = func(v any) { c[key] = v }
			container = next
		case []any:
			i, ok := arrayIndex(key)
			if !ok || i >= len(c) {
				return nil, nil, false
			}
			next, ok := shallowCopy(c[i])
			if !ok {
				return nil, nil, false
			}
			c[i] = next
			set = func(v any) { c[i] = v }
			container = next
		default:
			return nil, nil, false
		}
	}
	return container, set, true
}

// applyInMap applies op to key of a map.
func applyInMap(c map[string]any, op, key string, value any) bool {
	switch op {
	case "add", "replace":
		// The library's replace sets a missing key too.
		c[key] = value
	case "remove":
		if _, ok := c[key]; !ok {
			return false
		}
		delete(c, key)
	}
	return true
}

// applyInList applies op at index key ("-": the end) of a list; set puts a
// list that grew or shrank in its parent.
func applyInList(c []any, op, key string, value any, set func(any)) bool {
	if op == "add" && key == "-" {
		set(append(c, value))
		return true
	}
	i, ok := arrayIndex(key)
	if !ok {
		return false
	}
	switch op {
	case "add":
		if i > len(c) {
			return false
		}
		grown := make([]any, 0, len(c)+1)
		set(append(append(append(grown, c[:i]...), value), c[i:]...))
	case "replace":
		if i >= len(c) {
			return false
		}
		c[i] = value
	case "remove":
		if i >= len(c) {
			return false
		}
		shrunk := make([]any, 0, len(c)-1)
		set(append(append(shrunk, c[:i]...), c[i+1:]...))
	}
	return true
}

// shallowCopy copies a map or a list one level deep; false for anything else
// (null and scalars cannot be stepped into).
func shallowCopy(v any) (any, bool) {
	switch t := v.(type) {
	case map[string]any:
		return maps.Clone(t), true
	case []any:
		return slices.Clone(t), true
	}
	return nil, false
}

// arrayIndex parses a non-negative array index written without sign or
// leading zeros.
func arrayIndex(s string) (int, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') || len(s) > 9 {
		return 0, false
	}
	i := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		i = i*10 + int(c-'0')
	}
	return i, true
}

// RoundTrips tells whether encoding v to JSON and decoding it as the API
// machinery does (whole numbers as int64) gives v back exactly.
func RoundTrips(v any) bool {
	return everyLeaf(v, func(leaf any) bool {
		switch t := leaf.(type) {
		case nil, bool, int64:
			return true
		case string:
			return utf8.ValidString(t)
		case float64:
			// Whole numbers would come back as int64; NaN and infinities do not encode.
			return t != math.Trunc(t) && !math.IsNaN(t) && !math.IsInf(t, 0)
		}
		// A nil map or list would come back as null.
		return false
	})
}

// everyLeaf tells whether ok accepts every leaf of v, the maps' keys being
// valid UTF-8; a nil map or list is a leaf.
func everyLeaf(v any, ok func(any) bool) bool {
	switch t := v.(type) {
	case map[string]any:
		if t == nil {
			return ok(t)
		}
		for k, e := range t {
			if !utf8.ValidString(k) || !everyLeaf(e, ok) {
				return false
			}
		}
		return true
	case []any:
		if t == nil {
			return ok(t)
		}
		for _, e := range t {
			if !everyLeaf(e, ok) {
				return false
			}
		}
		return true
	}
	return ok(v)
}
