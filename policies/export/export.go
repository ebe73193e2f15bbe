package export

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/decls"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/parser"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	apiservercel "k8s.io/apiserver/pkg/cel"
	"k8s.io/apiserver/pkg/cel/environment"
	"sigs.k8s.io/yaml"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/compile"
	"github.com/doris-admission/doris-admission/policies/engine"
	dorislib "github.com/doris-admission/doris-admission/policies/library"
	"github.com/doris-admission/doris-admission/policies/source"
)

// Exported is a policy as native admissionregistration.k8s.io/v1 objects, or
// why it cannot be one.
type Exported struct {
	Policy policies.Policy
	// Objects are the native policy and its binding (a ValidatingAdmissionPolicy
	// and ValidatingAdmissionPolicyBinding, or a MutatingAdmissionPolicy and
	// MutatingAdmissionPolicyBinding); nil when the policy is not exported.
	Objects []runtime.Object
	// NotExported says why the policy has no native equivalent; "" when it is
	// exported.
	NotExported string
	// Calls are the doris-admission CEL functions that keep the policy from
	// being exported, in the order they first appear: those that read the
	// cluster, and the pure ones where a call cannot be inlined. A policy
	// that calls any is not exported.
	Calls []string
	// Inlined are the pure doris-admission functions (dorisRole,
	// dorisContainer, dorisPort, dorisConfDir) whose calls the native policy
	// has written out as plain CEL, in the order they first appear.
	Inlined []string
	// Lost says, one sentence each, what the native objects do not carry
	// over from the policy or do differently.
	Lost []string
}

// Explanation is the line that says why the policy is not exported.
func (e Exported) Explanation() string {
	return fmt.Sprintf("%s %s: not exported: %s", e.Policy.Kind(), e.Policy.Name(), e.NotExported)
}

// YAML is the native policy and its binding as two YAML documents, the first
// headed by comments that name the source policy and what is lost.
func (e Exported) YAML() ([]byte, error) {
	if e.NotExported != "" {
		return nil, errors.New(e.Explanation())
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "# %s %s (%s)\n", e.Policy.Kind(), e.Policy.Name(), e.Policy.Origin)
	for _, lost := range e.Lost {
		fmt.Fprintf(&out, "# Note: %s\n", lost)
	}
	for i, obj := range e.Objects {
		content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return nil, err
		}
		unstructured.RemoveNestedField(content, "metadata", "creationTimestamp")
		delete(content, "status")
		data, err := yaml.Marshal(content)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(data)
	}
	return out.Bytes(), nil
}

// ExportHeader heads a stream of exported policies: what holds for all of them.
const ExportHeader = `# Native admissionregistration.k8s.io/v1 admission policies and bindings,
# exported by doris-admission policy export. They apply in every namespace,
# also in those doris-admission's webhooks are never sent (serve
# --exclude-namespaces: kube-system and the server's own namespace).

`

// Export converts each policy, in evaluation order, to its native admission
// policy and binding, or says why it cannot be converted. The calls of the
// pure doris-admission functions (dorisRole, dorisContainer, dorisPort with
// a constant port name, dorisConfDir) are inlined: replaced by plain CEL
// that gives the same answers. A policy cannot be converted when its
// expressions call the other doris-admission functions, which read the
// cluster (found by compiling every expression in the plain Kubernetes
// environment), when its CEL does not compile, or when it uses what native
// policies do not allow.
func Export(list []policies.Policy) []Exported {
	sorted := slices.Clone(list)
	slices.SortStableFunc(sorted, policies.Compare)
	checker := engine.NewEngine(source.Offline(nil))
	seen := map[string]policies.Policy{}
	out := make([]Exported, 0, len(sorted))
	for _, p := range sorted {
		e := Exported{Policy: p}
		var reasons []string
		// A native policy has no spec.generate: what is exported, and
		// checked, is the policy without it.
		plain := withoutGenerate(p)
		// The policy's own mistakes are found on the policy as written,
		// with the pure functions declared: with them undeclared, what
		// reads their results fails to compile too.
		calls, compileProblems := plainCompile(plain, pureDeclaredEnvSet())
		native, inlined := inlinePolicy(plain)
		blocking := slices.Concat(calls, inlined.blocked)
		order := fieldOrder(plain)
		slices.SortStableFunc(blocking, func(a, b libraryCall) int { return order[a.field] - order[b.field] })
		e.Calls = callNames(blocking)
		if len(blocking) > 0 {
			reasons = append(reasons, libraryReason(blocking))
			reasons = append(reasons, inlined.reasons...)
		}
		if len(blocking) == 0 && len(compileProblems) == 0 && len(inlined.functions) > 0 {
			// What is exported is the inlined CEL: it must compile as the
			// API server compiles it, which it does unless the builders of
			// policies/library are wrong.
			if leftover, problems := plainCompile(native, compile.KubernetesEnvSet()); len(leftover) > 0 || len(problems) > 0 {
				reasons = append(reasons, inliningReason(inlined.functions, leftover, problems))
			}
		}
		reasons = append(reasons, structuralProblems(p)...)
		if len(reasons) == 0 && len(compileProblems) == 0 {
			// The typed check finds what the plain compile cannot: fields
			// the matched kinds do not have; again the policy's own first.
			compileProblems = checker.Check(plain)
			if len(compileProblems) == 0 && len(inlined.functions) > 0 {
				if problems := checker.Check(native); len(problems) > 0 {
					reasons = append(reasons, inliningReason(inlined.functions, nil, problems))
				}
			}
		}
		if len(blocking) == 0 && len(compileProblems) > 0 {
			reasons = append(reasons, compileReason(compileProblems))
		}
		key := p.Kind() + "/" + p.Name()
		if first, ok := seen[key]; ok && len(reasons) == 0 {
			reasons = append(reasons, fmt.Sprintf("another %s named %s (%s) is exported already, and native policy names are unique; rename one", p.Kind(), p.Name(), first.Origin))
		} else if len(reasons) == 0 {
			seen[key] = p
		}
		if len(reasons) > 0 {
			e.NotExported = strings.Join(reasons, "; ")
		} else {
			if p.Mutating != nil {
				e.Objects, e.Lost = exportMutating(native)
			} else {
				e.Objects, e.Lost = exportValidating(native)
			}
			e.Inlined = inlined.functions
			if len(inlined.functions) > 0 {
				e.Lost = append([]string{inlinedNote(inlined.functions)}, e.Lost...)
			}
			if p.Mutating != nil && len(p.Mutating.Spec.Generate) > 0 {
				e.Lost = append(e.Lost, "spec.generate is left out: a native admission policy cannot create objects; keep this policy in doris-admission for that")
			}
		}
		out = append(out, e)
	}
	return out
}

// withoutGenerate is p without spec.generate.
func withoutGenerate(p policies.Policy) policies.Policy {
	if p.Mutating == nil || len(p.Mutating.Spec.Generate) == 0 {
		return p
	}
	mutating := p.Mutating.DeepCopy()
	mutating.Spec.Generate = nil
	p.Mutating = mutating
	return p
}

// libraryCall is one call of a doris-admission CEL function.
type libraryCall struct {
	function string
	field    string
	library  *celLibrary
}

// celLibrary is one of doris-admission's CEL libraries, and what a native
// policy misses without it.
type celLibrary struct {
	env *cel.Env
	// does completes "<functions>, which ...", for one function and for more.
	does, doPlural string
}

var libraries = sync.OnceValue(func() []*celLibrary {
	build := func(opt cel.EnvOption, does, doPlural string) *celLibrary {
		envSet, err := compile.KubernetesEnvSet().Extend(environment.VersionedOptions{
			IntroducedVersion: compile.CompatibilityVersion,
			EnvOptions:        []cel.EnvOption{opt},
		})
		if err != nil {
			panic("the CEL environment does not build: " + err.Error())
		}
		env, err := envSet.Env(environment.StoredExpressions)
		if err != nil {
			panic("the CEL environment does not build: " + err.Error())
		}
		return &celLibrary{env: env, does: does, doPlural: doPlural}
	}
	return []*celLibrary{
		build(dorislib.Doris(nil), "which only doris-admission provides", "which only doris-admission provides"),
		build(dorislib.Inventory(nil), "which reads doris-admission's index of the cluster's Services", "which read doris-admission's index of the cluster's Services"),
	}
})

// libraryOf is the doris-admission library that declares function, or nil.
func libraryOf(function string) *celLibrary {
	for _, l := range libraries() {
		if l.env.HasFunction(function) {
			return l
		}
	}
	return nil
}

// undeclaredReference is the CEL checker's message for a name the
// environment does not declare.
var undeclaredReference = regexp.MustCompile(`^undeclared reference to '([^']+)'`)

// pureDeclaredEnvSet is the Kubernetes environment with the pure
// doris-admission functions declared, as the Doris library declares them.
var pureDeclaredEnvSet = sync.OnceValue(func() *environment.EnvSet {
	var pure []*decls.FunctionDecl
	for name, decl := range libraries()[0].env.Functions() {
		if dorislib.IsPure(name) {
			pure = append(pure, decl)
		}
	}
	slices.SortFunc(pure, func(a, b *decls.FunctionDecl) int { return strings.Compare(a.Name(), b.Name()) })
	envSet, err := compile.KubernetesEnvSet().Extend(environment.VersionedOptions{
		IntroducedVersion: compile.CompatibilityVersion,
		EnvOptions:        []cel.EnvOption{cel.FunctionDecls(pure...)},
	})
	if err != nil {
		panic("the CEL environment does not build: " + err.Error())
	}
	return envSet
})

// fieldOrder numbers the fields of p's expressions in the order of expressionsOf.
func fieldOrder(p policies.Policy) map[string]int {
	order := map[string]int{}
	for i, e := range compile.ExpressionsOf(p) {
		order[e.Field] = i
	}
	return order
}

// plainCompile compiles every expression of p as a native policy's would be:
// in envSet, the Kubernetes environment (with the pure doris-admission
// functions declared, or not), as the API server does when the policy is
// created. It returns the calls of doris-admission functions, which that
// environment does not declare, and every other compile error.
func plainCompile(p policies.Policy, envSet *environment.EnvSet) ([]libraryCall, []compile.ExpressionError) {
	compiler, err := plugincel.NewCompositedCompiler(envSet)
	if err != nil {
		return nil, []compile.ExpressionError{{Field: "spec", Message: fmt.Sprintf("building the CEL environment: %v", err)}}
	}
	env, err := compiler.Env(environment.NewExpressions)
	if err != nil {
		return nil, []compile.ExpressionError{{Field: "spec", Message: fmt.Sprintf("building the CEL environment: %v", err)}}
	}
	hasParams := p.ParamKind() != nil
	opts := plugincel.OptionalVariableDeclarations{HasParams: hasParams, HasAuthorizer: true}
	var calls []libraryCall
	var problems []compile.ExpressionError
	for _, e := range compile.ExpressionsOf(p) {
		exprOpts := opts
		switch {
		case e.Variable == "" && p.Mutating != nil && strings.HasPrefix(e.Field, "spec.mutations"):
			exprOpts.HasPatchTypes = true
		case strings.HasSuffix(e.Field, ".messageExpression"):
			exprOpts.HasAuthorizer = false
		}
		var result plugincel.CompilationResult
		if variable, ok := e.Accessor.(plugincel.NamedExpressionAccessor); ok && e.Variable != "" {
			result = compiler.CompileAndStoreVariable(variable, exprOpts, environment.NewExpressions)
		} else {
			result = compiler.CompileCELExpression(e.Accessor, exprOpts, environment.NewExpressions)
		}
		if result.Error == nil {
			continue
		}
		found, rest := libraryCalls(env, e.Accessor.GetExpression(), result.Error)
		for i := range found {
			found[i].field = e.Field
		}
		calls = append(calls, found...)
		if rest != "" {
			problems = append(problems, compile.ExpressionError{Field: e.Field, Expression: e.Accessor.GetExpression(), Message: rest})
		}
	}
	return calls, problems
}

// libraryCalls sorts the errors of a failed compile of expression: the calls
// of doris-admission functions, and the other errors, if any, as one message.
func libraryCalls(env *cel.Env, expression string, compileErr *apiservercel.Error) ([]libraryCall, string) {
	var compilationError *apiservercel.CompilationError
	if !errors.As(compileErr, &compilationError) || compilationError.Issues == nil {
		return nil, compileErr.Detail
	}
	parsed, issues := env.Parse(expression)
	if issues != nil && issues.Err() != nil {
		return nil, compileErr.Detail
	}
	// The names the checker could not resolve; a qualified function such as
	// inventory.nodePortOwners is reported as its two parts.
	undeclared := map[string]bool{}
	var other []string
	for _, issue := range compilationError.Issues.Errors() {
		if m := undeclaredReference.FindStringSubmatch(issue.Message); m != nil {
			undeclared[m[1]] = true
		} else {
			other = append(other, issue.Message)
		}
	}
	var calls []libraryCall
	explained := map[string]bool{}
	celast.PreOrderVisit(parsed.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.CallKind {
			return
		}
		call := e.AsCall()
		name := call.FunctionName()
		root := ""
		if call.IsMemberFunction() {
			if qualifier, ok := qualifiedName(call.Target()); ok {
				name, root = qualifier+"."+name, strings.SplitN(qualifier, ".", 2)[0]
			}
		}
		l := libraryOf(name)
		if l == nil {
			return
		}
		if !undeclared[call.FunctionName()] && !undeclared[name] {
			return
		}
		explained[call.FunctionName()], explained[name] = true, true
		if root != "" {
			explained[root] = true
		}
		if !slices.ContainsFunc(calls, func(c libraryCall) bool { return c.function == name }) {
			calls = append(calls, libraryCall{function: name, library: l})
		}
	}))
	for name := range undeclared {
		if !explained[name] {
			other = append(other, fmt.Sprintf("undeclared reference to '%s'", name))
		}
	}
	slices.Sort(other)
	return calls, strings.Join(other, "; ")
}

// qualifiedName is the dotted name of an identifier or a chain of field
// selections on one, such as inventory or a.b.
func qualifiedName(e celast.Expr) (string, bool) {
	switch e.Kind() {
	case celast.IdentKind:
		return e.AsIdent(), true
	case celast.SelectKind:
		sel := e.AsSelect()
		if sel.IsTestOnly() {
			return "", false
		}
		prefix, ok := qualifiedName(sel.Operand())
		return prefix + "." + sel.FieldName(), ok
	}
	return "", false
}

// callNames lists the functions called, each once, in order of first use.
func callNames(calls []libraryCall) []string {
	var names []string
	for _, c := range calls {
		if !slices.Contains(names, c.function) {
			names = append(names, c.function)
		}
	}
	return names
}

// libraryReason says which doris-admission functions the policy calls and
// what they do that the API server cannot.
func libraryReason(calls []libraryCall) string {
	var groups []string
	for _, l := range libraries() {
		var names []string
		for _, c := range calls {
			if c.library == l && !slices.Contains(names, c.function) {
				names = append(names, c.function)
			}
		}
		switch len(names) {
		case 0:
		case 1:
			groups = append(groups, names[0]+", "+l.does)
		default:
			groups = append(groups, strings.Join(names, ", ")+", "+l.doPlural)
		}
	}
	return fmt.Sprintf("its expressions call %s (first in %s); keep enforcing it with doris-admission",
		strings.Join(groups, ", and "), calls[0].field)
}

// compileReason says which expression does not compile.
func compileReason(problems []compile.ExpressionError) string {
	first := problems[0]
	more := ""
	if len(problems) > 1 {
		more = fmt.Sprintf(" (and %d more)", len(problems)-1)
	}
	return fmt.Sprintf("%s does not compile: %s%s; fix it first (doris-admission policy list shows every problem)",
		first.Field, firstLine(first.Message), more)
}

// firstLine is the first line of a compiler message, without its "ERROR:
// <input>:" prefix.
func firstLine(message string) string {
	message = strings.TrimPrefix(message, "compilation failed: ")
	line, _, _ := strings.Cut(message, "\n")
	if rest, ok := strings.CutPrefix(line, "ERROR: <input>:"); ok {
		return "at " + rest
	}
	return line
}

// structuralProblems are what p sets that native policies do not allow.
func structuralProblems(p policies.Policy) []string {
	var problems []string
	match := p.MatchConstraints()
	if match == nil || len(match.ResourceRules) == 0 {
		problems = append(problems, "spec.matchConstraints.resourceRules is empty, and a native policy needs at least one rule; say which resources it applies to")
	}
	if p.Mutating != nil && match != nil {
		for i, rule := range match.ResourceRules {
			if slices.Contains(rule.Operations, admissionregistrationv1.Delete) {
				problems = append(problems, fmt.Sprintf("spec.matchConstraints.resourceRules[%d] matches DELETE, which a native MutatingAdmissionPolicy cannot; remove DELETE from its operations", i))
			}
		}
	}
	if ref := p.ParamRef(); ref != nil && p.ParamKind() != nil && ref.Name != "" && ref.Selector != nil {
		problems = append(problems, "spec.paramRef sets both name and selector, which a native binding does not allow; keep one")
	}
	switch {
	case p.Mutating != nil && len(p.Mutating.Spec.Mutations) == 0 && len(p.Mutating.Spec.Generate) > 0:
		problems = append(problems, "it only creates objects (spec.generate), which a native admission policy cannot do; keep it in doris-admission")
	case p.Mutating != nil && len(p.Mutating.Spec.Mutations) == 0:
		problems = append(problems, "spec.mutations is empty, and a native MutatingAdmissionPolicy needs at least one")
	case p.Validating != nil && len(p.Validating.Spec.Validations) == 0 && len(p.Validating.Spec.AuditAnnotations) == 0:
		problems = append(problems, "spec.validations and spec.auditAnnotations are empty, and a native ValidatingAdmissionPolicy needs one of them")
	}
	return problems
}

var (
	nativeGroupVersion = admissionregistrationv1.SchemeGroupVersion.String()
	configMapParams    = admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"}
)

func exportValidating(p policies.Policy) ([]runtime.Object, []string) {
	spec := p.Validating.DeepCopy().Spec
	var lost []string
	validations := make([]admissionregistrationv1.Validation, len(spec.Validations))
	for i, v := range spec.Validations {
		validations[i] = admissionregistrationv1.Validation{Expression: v.Expression, Message: v.Message, Reason: v.Reason, MessageExpression: v.MessageExpression}
		if v.FieldPath != "" {
			lost = append(lost, fmt.Sprintf("spec.validations[%d].fieldPath (%s) is not carried over: native validations have no fieldPath, so the API server reports a failure on the object, not on %s", i, v.FieldPath, v.FieldPath))
		}
	}
	if coversServicesRule(spec.MatchConstraints) {
		lost = append(lost, "for Services, doris-admission runs this policy before the API server allocates node ports; the native policy runs after, so a Service it would deny may first be refused with \"provided port is already allocated\"")
	}
	lost = append(lost, settingsLost(p)...)
	failure := admissionregistrationv1.Fail
	if spec.FailurePolicy != nil {
		failure = *spec.FailurePolicy
	}
	actions := spec.ValidationActions
	if len(actions) == 0 {
		actions = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}
	}
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: nativeGroupVersion, Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: nativeMeta(p.Validating.ObjectMeta),
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			ParamKind:        spec.ParamKind,
			MatchConstraints: spec.MatchConstraints,
			Validations:      validations,
			FailurePolicy:    &failure,
			AuditAnnotations: spec.AuditAnnotations,
			MatchConditions:  spec.MatchConditions,
			Variables:        spec.Variables,
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: nativeGroupVersion, Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: nativeMeta(p.Validating.ObjectMeta),
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        p.Name(),
			ParamRef:          nativeParamRef(spec.ParamKind, spec.ParamRef),
			ValidationActions: actions,
		},
	}
	return []runtime.Object{policy, binding}, lost
}

func exportMutating(p policies.Policy) ([]runtime.Object, []string) {
	spec := p.Mutating.DeepCopy().Spec
	native := spec.MutatingAdmissionPolicySpec
	if native.FailurePolicy == nil {
		failure := admissionregistrationv1.Fail
		native.FailurePolicy = &failure
	}
	if native.ReinvocationPolicy == "" {
		native.ReinvocationPolicy = admissionregistrationv1.NeverReinvocationPolicy
	}
	policy := &admissionregistrationv1.MutatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: nativeGroupVersion, Kind: "MutatingAdmissionPolicy"},
		ObjectMeta: nativeMeta(p.Mutating.ObjectMeta),
		Spec:       native,
	}
	binding := &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: nativeGroupVersion, Kind: "MutatingAdmissionPolicyBinding"},
		ObjectMeta: nativeMeta(p.Mutating.ObjectMeta),
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName: p.Name(),
			ParamRef:   nativeParamRef(native.ParamKind, spec.ParamRef),
		},
	}
	return []runtime.Object{policy, binding}, settingsLost(p)
}

// nativeMeta is the metadata of the native objects: the policy's name,
// labels and annotations, but kubectl's record of the last apply.
func nativeMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	out := metav1.ObjectMeta{Name: m.Name, Labels: m.Labels}
	for k, v := range m.Annotations {
		if k == "kubectl.kubernetes.io/last-applied-configuration" {
			continue
		}
		if out.Annotations == nil {
			out.Annotations = map[string]string{}
		}
		out.Annotations[k] = v
	}
	return out
}

// nativeParamRef is ref as a native binding needs it, with the same meaning:
// one of name or selector (no name selects every object, as selector {}
// does), and parameterNotFoundAction, which defaults to Deny here.
func nativeParamRef(kind *admissionregistrationv1.ParamKind, ref *admissionregistrationv1.ParamRef) *admissionregistrationv1.ParamRef {
	if kind == nil || ref == nil {
		return nil
	}
	out := ref.DeepCopy()
	if out.Name == "" && out.Selector == nil {
		out.Selector = &metav1.LabelSelector{}
	}
	if out.ParameterNotFoundAction == nil {
		deny := admissionregistrationv1.DenyAction
		out.ParameterNotFoundAction = &deny
	}
	return out
}

// settingsLost notes that the API server does not fill in the settings
// ConfigMap of the built-in policies from the defaults, as doris-admission does.
func settingsLost(p policies.Policy) []string {
	kind, ref := p.ParamKind(), p.ParamRef()
	if kind == nil || *kind != configMapParams || ref == nil || ref.Name != builtin.SettingsName {
		return nil
	}
	return []string{fmt.Sprintf("the defaults of ConfigMap %s/%s are not carried over: doris-admission fills in the keys it leaves out (all of them when it does not exist), the API server reads it as it is; create it with every key of policies/builtin/settings/settings.yaml",
		ref.Namespace, ref.Name)}
}

// coversServicesRule tells whether match can match core v1 Services.
func coversServicesRule(match *admissionregistrationv1.MatchResources) bool {
	if match == nil {
		return false
	}
	for _, rule := range match.ResourceRules {
		if engine.CoversServices(rule.Rule) {
			return true
		}
	}
	return false
}

// inlining is what inlinePolicy did to a policy's expressions.
type inlining struct {
	// functions are the pure functions inlined, in the order first met.
	functions []string
	// blocked are the calls of pure functions that are left as they were.
	blocked []libraryCall
	// reasons say why, one sentence each, where more can be said than that
	// the function is doris-admission's.
	reasons []string
}

// inlineParser parses CEL as the Kubernetes environment does, but leaves
// macros (has, exists, map, ...) as the calls they are written as, so an
// expression unparses as written and a call can be replaced without
// rewriting the macros' expansions.
var inlineParser = sync.OnceValue(func() *cel.Env {
	env, err := libraries()[0].env.Extend(cel.ClearMacros())
	if err != nil {
		panic("the CEL environment does not build: " + err.Error())
	}
	return env
})

// inlinePolicy returns a copy of p whose expressions have every call of a
// pure doris-admission function that can be inlined replaced by its plain
// CEL (built by policies/library), and says what it did. An expression with
// nothing to inline is kept as written.
func inlinePolicy(p policies.Policy) (policies.Policy, *inlining) {
	in := &inlining{}
	out := policies.Policy{Origin: p.Origin}
	var variables []admissionregistrationv1.Variable
	var conditions []admissionregistrationv1.MatchCondition
	if p.Mutating != nil {
		out.Mutating = p.Mutating.DeepCopy()
		variables, conditions = out.Mutating.Spec.Variables, out.Mutating.Spec.MatchConditions
	} else {
		out.Validating = p.Validating.DeepCopy()
		variables, conditions = out.Validating.Spec.Variables, out.Validating.Spec.MatchConditions
	}
	// In the order of expressionsOf, so the first of each is met first.
	for i := range variables {
		in.rewrite(fmt.Sprintf("spec.variables[%d].expression", i), &variables[i].Expression)
	}
	for i := range conditions {
		in.rewrite(fmt.Sprintf("spec.matchConditions[%d].expression", i), &conditions[i].Expression)
	}
	if out.Mutating != nil {
		for i, m := range out.Mutating.Spec.Mutations {
			switch {
			case m.JSONPatch != nil && m.ApplyConfiguration != nil:
			case m.JSONPatch != nil:
				in.rewrite(fmt.Sprintf("spec.mutations[%d].jsonPatch.expression", i), &m.JSONPatch.Expression)
			case m.ApplyConfiguration != nil:
				in.rewrite(fmt.Sprintf("spec.mutations[%d].applyConfiguration.expression", i), &m.ApplyConfiguration.Expression)
			}
		}
		return out, in
	}
	for i := range out.Validating.Spec.Validations {
		v := &out.Validating.Spec.Validations[i]
		in.rewrite(fmt.Sprintf("spec.validations[%d].expression", i), &v.Expression)
		if v.MessageExpression != "" {
			in.rewrite(fmt.Sprintf("spec.validations[%d].messageExpression", i), &v.MessageExpression)
		}
	}
	for i := range out.Validating.Spec.AuditAnnotations {
		in.rewrite(fmt.Sprintf("spec.auditAnnotations[%d].valueExpression", i), &out.Validating.Spec.AuditAnnotations[i].ValueExpression)
	}
	return out, in
}

// rewrite inlines the calls in the expression *expression of field. On the
// parsed expression, each call of a pure function, innermost first, is
// replaced by the parsed CEL of its library builder, for the arguments as
// they are by then; the result is unparsed. An expression that does not
// parse is left for the compile to report.
func (in *inlining) rewrite(field string, expression *string) {
	parsed, issues := inlineParser().Parse(*expression)
	if issues.Err() != nil {
		return
	}
	tree := parsed.NativeRep()
	info := tree.SourceInfo()
	changed := false
	celast.PostOrderVisit(tree.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.CallKind {
			return
		}
		call := e.AsCall()
		function := call.FunctionName()
		if call.IsMemberFunction() || !dorislib.IsPure(function) || len(call.Args()) != arity(function) {
			// A call with the wrong arguments is the compile's to report.
			return
		}
		text, reason := inlineCall(call, info)
		var replacement *cel.Ast
		if reason == "" {
			var issues *cel.Issues
			if replacement, issues = inlineParser().Parse(text); issues.Err() != nil {
				reason = fmt.Sprintf("the plain CEL of %s does not parse (a mistake in doris-admission): %v", function, issues.Err())
			}
		}
		if reason != "" {
			in.blocked = append(in.blocked, libraryCall{function: function, field: field, library: libraryOf(function)})
			in.reasons = append(in.reasons, fmt.Sprintf("%s in %s %s", function, field, reason))
			return
		}
		e.SetKindCase(replacement.NativeRep().Expr())
		changed = true
		if !slices.Contains(in.functions, function) {
			in.functions = append(in.functions, function)
		}
	}))
	if !changed {
		return
	}
	text, err := parser.Unparse(tree.Expr(), info, unparseOptions...)
	if err != nil {
		// Not expected: the tree was parsed and holds only parsed trees.
		in.reasons = append(in.reasons, fmt.Sprintf("%s cannot be written out after inlining: %v", field, err))
		for _, function := range in.functions {
			in.blocked = append(in.blocked, libraryCall{function: function, field: field, library: libraryOf(function)})
		}
		return
	}
	*expression = text
}

// arity is the number of arguments of a pure function.
func arity(function string) int {
	switch function {
	case "dorisPort":
		return 2
	case "dorisHostMode":
		return 3
	}
	return 1
}

// inlineCall is the plain CEL of a call of a pure function, or "" and why it
// cannot be inlined.
func inlineCall(call celast.CallExpr, info *celast.SourceInfo) (string, string) {
	args := call.Args()
	object, err := parser.Unparse(args[0], info)
	if err != nil {
		return "", fmt.Sprintf("cannot be written out: %v", err)
	}
	switch call.FunctionName() {
	case "dorisRole":
		return dorislib.RoleCEL(object), ""
	case "dorisContainer":
		return dorislib.ContainerCEL(object), ""
	case "dorisConfDir":
		return dorislib.ConfDirCEL(object), ""
	case "dorisVersion":
		return dorislib.VersionCEL(object), ""
	case "dorisHostMode":
		old, err := parser.Unparse(args[1], info)
		if err != nil {
			return "", fmt.Sprintf("cannot be written out: %v", err)
		}
		defaultVersion, err := parser.Unparse(args[2], info)
		if err != nil {
			return "", fmt.Sprintf("cannot be written out: %v", err)
		}
		return dorislib.HostModeCEL(object, old, defaultVersion), ""
	}
	return inlinePort(object, args[1], info)
}

// inlinePort is the plain CEL of dorisPort(object, name) for a name that is
// a constant, or a choice (c ? a : b) between names that are: the choice
// is made first, then the port of the chosen name is read.
func inlinePort(object string, name celast.Expr, info *celast.SourceInfo) (string, string) {
	switch {
	case name.Kind() == celast.LiteralKind:
		if s, ok := name.AsLiteral().Value().(string); ok {
			text, err := dorislib.PortCEL(object, s)
			if err != nil {
				return "", fmt.Sprintf("cannot be inlined: %v (the Doris ports are %s)", err, strings.Join(dorisPortNames(), ", "))
			}
			return text, ""
		}
	case name.Kind() == celast.CallKind && name.AsCall().FunctionName() == operators.Conditional && len(name.AsCall().Args()) == 3:
		args := name.AsCall().Args()
		condition, err := parser.Unparse(args[0], info)
		if err != nil {
			return "", fmt.Sprintf("cannot be written out: %v", err)
		}
		ifTrue, reason := inlinePort(object, args[1], info)
		if reason != "" {
			return "", reason
		}
		ifFalse, reason := inlinePort(object, args[2], info)
		if reason != "" {
			return "", reason
		}
		return "(" + condition + ") ? (" + ifTrue + ") : (" + ifFalse + ")", ""
	}
	text, err := parser.Unparse(name, info)
	if err != nil {
		text = "an expression"
	}
	return "", fmt.Sprintf("names its port with %s, which is known only when the policy runs: only a call with a constant port name (such as 'query') can be inlined as plain CEL", text)
}

// dorisPortNames are the names dorisPort knows, in a fixed order.
func dorisPortNames() []string {
	names := slices.Collect(maps.Keys(dorislib.DefaultPorts))
	slices.Sort(names)
	return names
}

// inlinedNote says, among what the native policy does differently, that the
// pure functions are written out.
func inlinedNote(functions []string) string {
	return fmt.Sprintf("the calls of doris-admission's %s are inlined: each is written out as the plain CEL that gives the same answer (policies/library/cel.go), so these expressions are longer than in the policy", joinAnd(functions))
}

// joinAnd joins names as English does: a, b and c.
func joinAnd(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// inliningReason says that the inlined CEL does not compile. That is a
// mistake in doris-admission, not in the policy.
func inliningReason(functions []string, leftover []libraryCall, problems []compile.ExpressionError) string {
	detail := ""
	switch {
	case len(problems) > 0:
		detail = firstLine(problems[0].Message) + " in " + problems[0].Field
	case len(leftover) > 0:
		detail = "it still calls " + leftover[0].function + " in " + leftover[0].field
	}
	return fmt.Sprintf("the plain CEL that %s are inlined as does not compile (%s); this is a mistake in doris-admission: keep enforcing the policy with doris-admission, and report it", joinAnd(functions), detail)
}

// unparseOptions lay an inlined expression out on lines of about 100
// characters, broken before &&, || and ?.
var unparseOptions = []parser.UnparserOption{
	parser.WrapOnColumn(100),
	parser.WrapOnOperators(operators.LogicalAnd, operators.LogicalOr, operators.Conditional),
	parser.WrapAfterColumnLimit(false),
}
