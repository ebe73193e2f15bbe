package policies

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	apiservercel "k8s.io/apiserver/pkg/cel"
	"k8s.io/apiserver/pkg/cel/environment"
	"sigs.k8s.io/yaml"

	dorislib "github.com/doris-admission/doris-admission/policies/library"
)

// Exported is a policy as native admissionregistration.k8s.io/v1 objects, or
// why it cannot be one.
type Exported struct {
	Policy Policy
	// Objects are the native policy and its binding (a ValidatingAdmissionPolicy
	// and ValidatingAdmissionPolicyBinding, or a MutatingAdmissionPolicy and
	// MutatingAdmissionPolicyBinding); nil when the policy is not exported.
	Objects []runtime.Object
	// NotExported says why the policy has no native equivalent; "" when it is
	// exported.
	NotExported string
	// Calls are the doris-admission CEL functions the policy calls, in the
	// order they first appear; a policy that calls any is not exported.
	Calls []string
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
// policy and binding, or says why it cannot be converted. A policy cannot be
// converted when its expressions call doris-admission's own CEL functions
// (found by compiling every expression in the plain Kubernetes environment),
// when its CEL does not compile, or when it uses what native policies do not
// allow.
func Export(policies []Policy) []Exported {
	sorted := slices.Clone(policies)
	slices.SortStableFunc(sorted, comparePolicies)
	checker := NewEngine(OfflineConfig(nil))
	seen := map[string]Policy{}
	out := make([]Exported, 0, len(sorted))
	for _, p := range sorted {
		e := Exported{Policy: p}
		var reasons []string
		calls, compileProblems := plainCompile(p)
		e.Calls = callNames(calls)
		if len(calls) > 0 {
			reasons = append(reasons, libraryReason(calls))
		}
		reasons = append(reasons, structuralProblems(p)...)
		if len(reasons) == 0 && len(compileProblems) == 0 {
			// The typed check finds what the plain compile cannot: fields
			// the matched kinds do not have.
			compileProblems = checker.Check(p)
		}
		if len(calls) == 0 && len(compileProblems) > 0 {
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
		} else if p.Mutating != nil {
			e.Objects, e.Lost = exportMutating(p)
		} else {
			e.Objects, e.Lost = exportValidating(p)
		}
		out = append(out, e)
	}
	return out
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
		envSet, err := kubernetesEnvSet().Extend(environment.VersionedOptions{
			IntroducedVersion: CompatibilityVersion,
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

// plainCompile compiles every expression of p as a native policy's would be:
// in the Kubernetes environment alone, as the API server does when the policy
// is created. It returns the calls of doris-admission functions, which that
// environment does not declare, and every other compile error.
func plainCompile(p Policy) ([]libraryCall, []ExpressionError) {
	compiler, err := plugincel.NewCompositedCompiler(kubernetesEnvSet())
	if err != nil {
		return nil, []ExpressionError{{Field: "spec", Message: fmt.Sprintf("building the CEL environment: %v", err)}}
	}
	env, err := compiler.Env(environment.NewExpressions)
	if err != nil {
		return nil, []ExpressionError{{Field: "spec", Message: fmt.Sprintf("building the CEL environment: %v", err)}}
	}
	hasParams := paramKind(p) != nil
	opts := plugincel.OptionalVariableDeclarations{HasParams: hasParams, HasAuthorizer: true}
	var calls []libraryCall
	var problems []ExpressionError
	for _, e := range expressionsOf(p) {
		exprOpts := opts
		switch {
		case e.variable == "" && p.Mutating != nil && strings.HasPrefix(e.field, "spec.mutations"):
			exprOpts.HasPatchTypes = true
		case strings.HasSuffix(e.field, ".messageExpression"):
			exprOpts.HasAuthorizer = false
		}
		var result plugincel.CompilationResult
		if variable, ok := e.accessor.(plugincel.NamedExpressionAccessor); ok && e.variable != "" {
			result = compiler.CompileAndStoreVariable(variable, exprOpts, environment.NewExpressions)
		} else {
			result = compiler.CompileCELExpression(e.accessor, exprOpts, environment.NewExpressions)
		}
		if result.Error == nil {
			continue
		}
		found, rest := libraryCalls(env, e.accessor.GetExpression(), result.Error)
		for i := range found {
			found[i].field = e.field
		}
		calls = append(calls, found...)
		if rest != "" {
			problems = append(problems, ExpressionError{Field: e.field, Expression: e.accessor.GetExpression(), Message: rest})
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
func compileReason(problems []ExpressionError) string {
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
func structuralProblems(p Policy) []string {
	var problems []string
	match := p.matchConstraints()
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
	if ref := paramRef(p); ref != nil && paramKind(p) != nil && ref.Name != "" && ref.Selector != nil {
		problems = append(problems, "spec.paramRef sets both name and selector, which a native binding does not allow; keep one")
	}
	switch {
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

func exportValidating(p Policy) ([]runtime.Object, []string) {
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

func exportMutating(p Policy) ([]runtime.Object, []string) {
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
func settingsLost(p Policy) []string {
	kind, ref := paramKind(p), paramRef(p)
	if kind == nil || *kind != configMapParams || ref == nil || ref.Name != settingsName {
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
		if coversServices(rule.Rule) {
			return true
		}
	}
	return false
}
