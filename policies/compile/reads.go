package compile

import (
	"slices"
	"strconv"
	"strings"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/jsonpatch"
	"github.com/doris-admission/doris-admission/policies/library"
)

// A mutating policy that asks to be reinvoked runs again when a later policy
// changed the object, because the change may alter what it decides. Most
// changes cannot: the Doris policies each fill their own fields. So the
// engine works out, once per policy, which parts of the object its
// expressions can read, and reinvokes it only when a later change touched
// one of them. Where that cannot be told, the policy reads everything and is
// reinvoked after any change, as before.

// ObjectPath is a path into the request's object: field names, map keys and
// list indexes, with library.AnyKey for one not known before evaluation.
type ObjectPath []string

// objectRead is a part of the object an expression reads. A deep read
// depends on everything under path; a shallow one only on what is there
// (has(), size(), the keys or length a comprehension walks), so a change
// further inside does not touch it.
type objectRead struct {
	path    ObjectPath
	shallow bool
}

// ObjectReads is what a policy's expressions may read of the object.
type ObjectReads struct {
	// all is set when the reads cannot be told: any change touches them.
	all   bool
	reads []objectRead
}

// TouchedBy tells whether a change at write may change what is read; nil
// reads (a policy that did not compile) are touched by any change.
func (r *ObjectReads) TouchedBy(write ObjectPath) bool {
	if r == nil || r.all {
		return true
	}
	return slices.ContainsFunc(r.reads, func(read objectRead) bool {
		if within(read.path, write) {
			return true
		}
		if read.shallow {
			return len(write) == len(read.path)+1 && within(write, read.path)
		}
		return within(write, read.path)
	})
}

// within tells whether path lies inside (or is) prefix.
func within(path, prefix ObjectPath) bool {
	if len(prefix) > len(path) {
		return false
	}
	for i, key := range prefix {
		if key != path[i] && key != library.AnyKey && path[i] != library.AnyKey {
			return false
		}
	}
	return true
}

// mutatingReads works out what the expressions of the mutating policy p can
// read of the object: its matchConditions, its mutations and the variables
// they use, and the labels when an objectSelector picks the objects.
func mutatingReads(env *cel.Env, p policies.Policy) *ObjectReads {
	spec := p.Mutating.Spec
	a := &readAnalysis{env: env, variables: map[string]string{}, values: map[string][]ObjectPath{}}
	for _, v := range spec.Variables {
		a.variables[v.Name] = v.Expression
	}
	if spec.MatchConstraints != nil && spec.MatchConstraints.ObjectSelector != nil {
		a.read(ObjectPath{"metadata", "labels"}, false)
	}
	for _, c := range spec.MatchConditions {
		a.expression(c.Expression)
	}
	for _, m := range MutationExpressions(spec.Mutations) {
		a.expression(m.Accessor.GetExpression())
	}
	return &a.result
}

// readAnalysis follows the object through the expressions of one policy.
type readAnalysis struct {
	env *cel.Env
	// variables are the policy's variable expressions by name; values the
	// object paths each one may be, once worked out.
	variables map[string]string
	values    map[string][]ObjectPath
	result    ObjectReads
}

func (a *readAnalysis) read(path ObjectPath, shallow bool) {
	r := objectRead{path: path, shallow: shallow}
	if !slices.ContainsFunc(a.result.reads, func(seen objectRead) bool { return seen.shallow == shallow && slices.Equal(seen.path, path) }) {
		a.result.reads = append(a.result.reads, r)
	}
}

// expression adds what one expression reads; its result is used whole.
func (a *readAnalysis) expression(text string) []ObjectPath {
	parsed, issues := a.env.Parse(text)
	if issues != nil && issues.Err() != nil {
		a.result.all = true
		return nil
	}
	return a.use(parsed.NativeRep().Expr(), nil)
}

// variable is what variables.name may be; its reads are added the first
// time it is used, as its lazy evaluation happens once per run.
func (a *readAnalysis) variable(name string) []ObjectPath {
	if paths, ok := a.values[name]; ok {
		return paths
	}
	text, ok := a.variables[name]
	if !ok {
		return nil
	}
	a.values[name] = nil // a variable that names itself does not compile
	parsed, issues := a.env.Parse(text)
	if issues != nil && issues.Err() != nil {
		a.result.all = true
		return nil
	}
	paths := a.value(parsed.NativeRep().Expr(), nil)
	a.values[name] = paths
	return paths
}

// use adds a deep read of everything e may be, and returns nothing.
func (a *readAnalysis) use(e celast.Expr, s *scope) []ObjectPath {
	for _, p := range a.value(e, s) {
		a.read(p, false)
	}
	return nil
}

// value is the object paths e may evaluate to (nil when e is not part of the
// object), after adding what evaluating e reads.
func (a *readAnalysis) value(e celast.Expr, s *scope) []ObjectPath {
	switch e.Kind() {
	case celast.LiteralKind:
		return nil
	case celast.IdentKind:
		if paths, ok := s.lookup(e.AsIdent()); ok {
			return paths
		}
		if e.AsIdent() == "object" {
			return []ObjectPath{{}}
		}
		return nil
	case celast.SelectKind:
		return a.selectValue(e.AsSelect(), s)
	case celast.CallKind:
		return a.callValue(e.AsCall(), s)
	case celast.ComprehensionKind:
		return a.comprehensionValue(e.AsComprehension(), s)
	case celast.ListKind:
		for _, element := range e.AsList().Elements() {
			a.use(element, s)
		}
		return nil
	case celast.MapKind:
		for _, entry := range e.AsMap().Entries() {
			a.use(entry.AsMapEntry().Key(), s)
			a.use(entry.AsMapEntry().Value(), s)
		}
		return nil
	case celast.StructKind:
		for _, field := range e.AsStruct().Fields() {
			a.use(field.AsStructField().Value(), s)
		}
		return nil
	}
	a.result.all = true
	return nil
}

func (a *readAnalysis) selectValue(sel celast.SelectExpr, s *scope) []ObjectPath {
	operand := sel.Operand()
	if operand.Kind() == celast.IdentKind && operand.AsIdent() == "variables" {
		if _, local := s.lookup("variables"); !local {
			if sel.IsTestOnly() {
				return nil
			}
			return a.variable(sel.FieldName())
		}
	}
	paths := extend(a.value(operand, s), sel.FieldName())
	if sel.IsTestOnly() {
		for _, p := range paths {
			a.read(p, true)
		}
		return nil
	}
	return paths
}

func (a *readAnalysis) callValue(call celast.CallExpr, s *scope) []ObjectPath {
	fn, args := call.FunctionName(), call.Args()
	member := call.IsMemberFunction()
	switch {
	case (fn == operators.Index || fn == operators.OptIndex || fn == operators.OptSelect) && len(args) == 2:
		return extend(a.value(args[0], s), a.key(args[1], s))
	case fn == operators.Conditional && len(args) == 3:
		a.use(args[0], s)
		return union(a.value(args[1], s), a.value(args[2], s))
	case member && (fn == "orValue" || fn == "or") && len(args) == 1:
		return union(a.value(call.Target(), s), a.value(args[0], s))
	case member && fn == "value" && len(args) == 0, !member && fn == "dyn" && len(args) == 1:
		if member {
			return a.value(call.Target(), s)
		}
		return a.value(args[0], s)
	case member && (fn == "size" || fn == "hasValue") && len(args) == 0, !member && fn == "size" && len(args) == 1:
		target := call.Target()
		if !member {
			target = args[0]
		}
		for _, p := range a.value(target, s) {
			a.read(p, true)
		}
		return nil
	}
	if reads, ok := library.ObjectReads[fn]; ok && !member && len(args) > 0 {
		for _, p := range a.value(args[0], s) {
			for _, r := range reads {
				a.read(append(slices.Clip(p), r...), false)
			}
		}
		for _, arg := range args[1:] {
			a.use(arg, s)
		}
		return nil
	}
	if member {
		a.use(call.Target(), s)
	}
	for _, arg := range args {
		a.use(arg, s)
	}
	return nil
}

// comprehensionValue follows a comprehension (what map, filter, exists and
// the other macros expand to): it walks the keys or length of its range, and
// its variables are the elements.
func (a *readAnalysis) comprehensionValue(c celast.ComprehensionExpr, s *scope) []ObjectPath {
	iterRange := a.value(c.IterRange(), s)
	for _, p := range iterRange {
		a.read(p, true)
	}
	elements := extend(iterRange, library.AnyKey)
	loop := s.with(c.IterVar(), elements)
	if c.HasIterVar2() {
		loop = s.with(c.IterVar(), nil).with(c.IterVar2(), elements)
	}
	// The accumulator starts as accuInit and becomes what each step gives.
	accu := a.value(c.AccuInit(), s)
	accu = union(accu, a.value(c.LoopStep(), loop.with(c.AccuVar(), accu)))
	a.use(c.LoopCondition(), loop.with(c.AccuVar(), accu))
	return a.value(c.Result(), s.with(c.AccuVar(), accu))
}

// key is a literal index or key as a path element, else AnyKey.
func (a *readAnalysis) key(e celast.Expr, s *scope) string {
	if e.Kind() == celast.LiteralKind {
		switch v := e.AsLiteral().(type) {
		case types.String:
			return string(v)
		case types.Int:
			return strconv.FormatInt(int64(v), 10)
		case types.Uint:
			return strconv.FormatUint(uint64(v), 10)
		}
	}
	a.use(e, s)
	return library.AnyKey
}

func extend(paths []ObjectPath, key string) []ObjectPath {
	out := make([]ObjectPath, len(paths))
	for i, p := range paths {
		out[i] = append(slices.Clip(p), key)
	}
	return out
}

func union(a, b []ObjectPath) []ObjectPath {
	return append(slices.Clip(a), b...)
}

// scope binds the variables of the comprehensions around an expression.
type scope struct {
	name   string
	paths  []ObjectPath
	parent *scope
}

func (s *scope) with(name string, paths []ObjectPath) *scope {
	return &scope{name: name, paths: paths, parent: s}
}

func (s *scope) lookup(name string) ([]ObjectPath, bool) {
	for ; s != nil; s = s.parent {
		if s.name == name {
			return s.paths, true
		}
	}
	return nil, false
}

// OpsWrites are the parts of the object the applied operations changed; the
// whole object if they name none (they cannot have changed it, but a
// reinvocation is never skipped on a guess).
func OpsWrites(ops []jsonpatch.Op) []ObjectPath {
	var out []ObjectPath
	for _, op := range ops {
		out = append(out, patchWrites(op)...)
	}
	if len(ops) > 0 && len(out) == 0 {
		return []ObjectPath{{}}
	}
	return out
}

// ChangedParts are the parts of the object a patcher that does not say what
// it changed (an ApplyConfiguration) changed from before to after: where the
// JSON patch between them points, else the whole object if it changed at all.
func ChangedParts(before, after runtime.Object) []ObjectPath {
	b, okBefore := before.(*unstructured.Unstructured)
	a, okAfter := after.(*unstructured.Unstructured)
	if okBefore && okAfter {
		if ops, ok := jsonpatch.CreatePatch(b.Object, a.Object); ok {
			var out []ObjectPath
			for _, op := range ops {
				out = append(out, patchWrites(jsonpatch.Op{Op: op.Operation, Path: op.Path})...)
			}
			return out
		}
	}
	if equality.Semantic.DeepEqual(before, after) {
		return nil
	}
	return []ObjectPath{{}}
}

// patchWrites are the parts of the object a JSON patch operation may change.
// An operation that adds or removes a list element changes the whole list:
// the elements after it move.
func patchWrites(op jsonpatch.Op) []ObjectPath {
	switch op.Op {
	case "test":
		return nil
	case "move":
		return []ObjectPath{pointerPath(op.From, true), pointerPath(op.Path, true)}
	case "replace":
		return []ObjectPath{pointerPath(op.Path, false)}
	}
	return []ObjectPath{pointerPath(op.Path, true)}
}

// pointerPath is the object path of a JSON pointer. With listWide, a last
// element that is a list index (or "-") is left out: the change is to the list.
func pointerPath(pointer string, listWide bool) ObjectPath {
	if pointer == "" {
		return ObjectPath{}
	}
	keys := strings.Split(strings.TrimPrefix(pointer, "/"), "/")
	for i, key := range keys {
		keys[i] = jsonpatch.PointerToken(key)
		// "-" and negative indexes name no fixed element: the list is changed.
		if key == "-" || strings.HasPrefix(key, "-") && isIndex(key) {
			return keys[:i]
		}
	}
	if listWide && isIndex(keys[len(keys)-1]) {
		keys = keys[:len(keys)-1]
	}
	return keys
}

func isIndex(key string) bool {
	_, err := strconv.Atoi(key)
	return err == nil
}
