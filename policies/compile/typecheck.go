package compile

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/google/cel-go/cel"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/version"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	apiservercel "k8s.io/apiserver/pkg/cel"
	"k8s.io/apiserver/pkg/cel/common"
	"k8s.io/apiserver/pkg/cel/environment"
	"k8s.io/apiserver/pkg/cel/library"
	"k8s.io/apiserver/pkg/cel/mutation"
	"k8s.io/apiserver/pkg/cel/openapi"
	"k8s.io/apiserver/pkg/cel/openapi/resolver"

	"github.com/doris-admission/doris-admission/policies"
)

// maxKindsToCheck bounds the kinds a policy's expressions are checked
// against, as Kubernetes does for native policies.
const maxKindsToCheck = 10

// ExpressionError is what is wrong with one expression of a policy.
type ExpressionError struct {
	// Field holds the expression, e.g. spec.validations[0].expression.
	Field string
	// Expression is the CEL source.
	Expression string
	// Message is the compiler's message, with the position in the expression.
	Message string
}

// Summary is the problem on one line, without the field: the compiler's first
// message with its line and column, and the expression.
func (e ExpressionError) Summary() string {
	message := e.Message
	for _, line := range strings.Split(e.Message, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ERROR: <input>:"); ok {
			message = "at " + rest
			break
		}
	}
	if e.Expression == "" {
		return message
	}
	return fmt.Sprintf("%s (expression: %s)", message, strings.Join(strings.Fields(e.Expression), " "))
}

func (e ExpressionError) Error() string {
	if e.Expression == "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s\n  expression: %s", e.Field, e.Message, e.Expression)
}

// TypeChecker compiles a policy's expressions with object, oldObject and
// params typed by the schemas of the kinds the policy matches, so a field that
// does not exist is an error at load time, not when the expression first runs.
type TypeChecker struct {
	envSet  *environment.EnvSet
	schemas resolver.SchemaResolver
	mapper  meta.RESTMapper
}

// FieldExpression is one expression of a policy and the field that holds it.
type FieldExpression struct {
	Field    string
	Accessor plugincel.ExpressionAccessor
	Variable string // set for spec.variables entries
}

// check returns every expression of p that does not compile: first as it
// runs (untyped objects, return types enforced), then against the schema of
// each kind p matches, which finds fields that do not exist. It also returns
// the estimated worst-case cost of each expression that compiles against a
// known kind: the highest over the kinds.
func (t *TypeChecker) check(p policies.Policy) (problems []ExpressionError, costs []ExpressionCost) {
	kinds := append([]kindType{{}}, t.matchedKinds(p)...)
	byField := map[string]ExpressionError{}
	costByField := map[string]ExpressionCost{}
	for _, kind := range kinds {
		kindProblems, kindCosts := t.checkKind(p, kind)
		for _, problem := range kindProblems {
			if _, seen := byField[problem.Field]; seen {
				continue
			}
			if len(kinds) > 2 && kind.declType != nil {
				problem.Message = fmt.Sprintf("for %s: %s", kind.gvk.Kind, problem.Message)
			}
			byField[problem.Field] = problem
		}
		for _, cost := range kindCosts {
			if current, ok := costByField[cost.Field]; !ok || cost.Max > current.Max {
				costByField[cost.Field] = cost
			}
		}
	}
	// Report in the order the expressions appear in the policy.
	for _, e := range ExpressionsOf(p) {
		if problem, ok := byField[e.Field]; ok {
			problems = append(problems, problem)
			delete(byField, e.Field)
		} else if cost, ok := costByField[e.Field]; ok {
			costs = append(costs, cost)
		}
	}
	for _, problem := range byField {
		problems = append(problems, problem)
	}
	return problems, costs
}

// ExpressionCost is the estimated worst-case cost of one expression, on the
// largest object of Kind its schema allows (lists without maxItems as long as
// fits in a 3 MiB request, as Kubernetes estimates CRD validation rules).
type ExpressionCost struct {
	Field, Expression string
	// Kind is the matched kind the estimate is the highest for.
	Kind string
	// Max is the estimate; math.MaxUint64 when it has no bound: the size of
	// something the expression iterates over is unknown.
	Max uint64
}

// Unbounded tells whether the estimate has no bound.
func (c ExpressionCost) Unbounded() bool { return c.Max == math.MaxUint64 }

// FormatCost writes a cost with thousands separators, or "unbounded".
func FormatCost(cost uint64) string {
	if cost == math.MaxUint64 {
		return "unbounded"
	}
	digits := strconv.FormatUint(cost, 10)
	var b strings.Builder
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}

// kindType is a matched kind and its CEL type (nil when its schema is unknown).
type kindType struct {
	gvk      schema.GroupVersionKind
	declType *apiservercel.DeclType
}

// checkKind compiles p's expressions with object typed as kind; for a known
// kind it also estimates their cost, by field.
func (t *TypeChecker) checkKind(p policies.Policy, kind kindType) ([]ExpressionError, []ExpressionCost) {
	hasParams := p.ParamKind() != nil
	paramsType := t.paramsType(p)
	envSet, err := checkingEnvSet(t.envSet, kind.declType, paramsType, hasParams, p.Mutating != nil)
	if err != nil {
		return []ExpressionError{{Field: "spec", Message: fmt.Sprintf("building the CEL environment: %v", err)}}, nil
	}
	compiler, err := plugincel.NewCompositedCompilerForTypeChecking(envSet)
	if err != nil {
		return []ExpressionError{{Field: "spec", Message: fmt.Sprintf("building the CEL environment: %v", err)}}, nil
	}
	// Only the untyped pass checks return types: that is the pass that
	// compiles as the expression will run. Only typed passes estimate costs:
	// untyped, every list is unbounded.
	checking := &checkingCompiler{composited: compiler, returnTypes: kind.declType == nil}
	if kind.declType != nil {
		checking.estimator = newCostEstimator(map[string]*apiservercel.DeclType{
			plugincel.ObjectVarName: kind.declType, plugincel.OldObjectVarName: kind.declType, plugincel.ParamsVarName: paramsType,
		})
		checking.costs = map[plugincel.ExpressionAccessor]uint64{}
	}
	compiler.Compiler = checking
	opts := plugincel.OptionalVariableDeclarations{HasParams: hasParams, HasAuthorizer: true}
	var problems []ExpressionError
	var costs []ExpressionCost
	for _, e := range ExpressionsOf(p) {
		var result plugincel.CompilationResult
		if variable, ok := e.Accessor.(plugincel.NamedExpressionAccessor); ok && e.Variable != "" {
			result = compiler.CompileAndStoreVariable(variable, opts, environment.NewExpressions)
		} else {
			result = compiler.CompileCELExpression(e.Accessor, opts, environment.NewExpressions)
		}
		if result.Error != nil {
			problems = append(problems, ExpressionError{Field: e.Field, Expression: e.Accessor.GetExpression(), Message: result.Error.Detail})
		} else if cost, ok := checking.costs[e.Accessor]; ok {
			costs = append(costs, ExpressionCost{Field: e.Field, Expression: e.Accessor.GetExpression(), Kind: kind.gvk.Kind, Max: cost})
		}
	}
	return problems, costs
}

// matchedKinds resolves the kinds named by p's resource rules whose schemas
// are known, with their types.
func (t *TypeChecker) matchedKinds(p policies.Policy) []kindType {
	var kinds []kindType
	seen := map[schema.GroupVersionKind]bool{}
	if m := p.MatchConstraints(); m != nil {
		for _, rule := range m.ResourceRules {
			for _, gvk := range t.ruleKinds(rule.Rule) {
				if seen[gvk] || len(kinds) == maxKindsToCheck {
					continue
				}
				seen[gvk] = true
				if declType := t.declType(gvk); declType != nil {
					kinds = append(kinds, kindType{gvk, declType})
				}
			}
		}
	}
	return kinds
}

// ruleKinds lists the kinds a rule names exactly; wildcards are skipped, as
// they match kinds whose schemas cannot all be known.
func (t *TypeChecker) ruleKinds(rule admissionregistrationv1.Rule) []schema.GroupVersionKind {
	var out []schema.GroupVersionKind
	for _, group := range rule.APIGroups {
		for _, ver := range rule.APIVersions {
			for _, res := range rule.Resources {
				if group == "*" || ver == "*" || strings.Contains(res, "*") || strings.Contains(res, "/") {
					continue
				}
				gvk, err := t.mapper.KindFor(schema.GroupVersionResource{Group: group, Version: ver, Resource: res})
				if err == nil {
					out = append(out, gvk)
				}
			}
		}
	}
	return out
}

// declType is the CEL type of gvk, or nil when its schema is not known.
func (t *TypeChecker) declType(gvk schema.GroupVersionKind) *apiservercel.DeclType {
	if gvk.Empty() {
		return nil
	}
	s, err := t.schemas.ResolveSchema(gvk)
	if err != nil {
		return nil
	}
	declType := common.SchemaDeclType(&openapi.Schema{Schema: s}, true)
	if declType == nil {
		return nil
	}
	return declType.MaybeAssignTypeName(typeName(gvk))
}

// paramsType is the CEL type of p's parameter kind, or nil when unknown.
func (t *TypeChecker) paramsType(p policies.Policy) *apiservercel.DeclType {
	kind := p.ParamKind()
	if kind == nil {
		return nil
	}
	gv, err := schema.ParseGroupVersion(kind.APIVersion)
	if err != nil {
		return nil
	}
	return t.declType(gv.WithKind(kind.Kind))
}

// typeName names the CEL object type of a kind uniquely within an environment.
func typeName(gvk schema.GroupVersionKind) string {
	return strings.NewReplacer(".", "_", "/", "_").Replace(gvk.Group + "_" + gvk.Version + "_" + gvk.Kind)
}

// ExpressionsOf lists every expression of p with the field that holds it,
// variables first, in the order they are compiled at run time.
func ExpressionsOf(p policies.Policy) []FieldExpression {
	var out []FieldExpression
	var variables []admissionregistrationv1.Variable
	var conditions []admissionregistrationv1.MatchCondition
	if p.Mutating != nil {
		variables, conditions = p.Mutating.Spec.Variables, p.Mutating.Spec.MatchConditions
	} else {
		variables, conditions = p.Validating.Spec.Variables, p.Validating.Spec.MatchConditions
	}
	for i, v := range variables {
		out = append(out, FieldExpression{Field: fmt.Sprintf("spec.variables[%d].expression", i), Accessor: &validating.Variable{Name: v.Name, Expression: v.Expression}, Variable: v.Name})
	}
	for i := range conditions {
		out = append(out, FieldExpression{Field: fmt.Sprintf("spec.matchConditions[%d].expression", i), Accessor: (*matchconditions.MatchCondition)(&conditions[i])})
	}
	if p.Mutating != nil {
		out = append(out, MutationExpressions(p.Mutating.Spec.Mutations)...)
		for i, g := range p.Mutating.Spec.Generate {
			out = append(out, FieldExpression{Field: fmt.Sprintf("spec.generate[%d].expression", i), Accessor: generatorExpression(g.Expression)})
		}
		return out
	}
	for i, v := range p.Validating.Spec.Validations {
		out = append(out, FieldExpression{Field: fmt.Sprintf("spec.validations[%d].expression", i), Accessor: &validating.ValidationCondition{Expression: v.Expression}})
		if v.MessageExpression != "" {
			out = append(out, FieldExpression{Field: fmt.Sprintf("spec.validations[%d].messageExpression", i), Accessor: &validating.MessageExpressionCondition{MessageExpression: v.MessageExpression}})
		}
	}
	for i, a := range p.Validating.Spec.AuditAnnotations {
		out = append(out, FieldExpression{Field: fmt.Sprintf("spec.auditAnnotations[%d].valueExpression", i), Accessor: &validating.AuditAnnotationCondition{Key: a.Key, ValueExpression: a.ValueExpression}})
	}
	return out
}

func MutationExpressions(mutations []admissionregistrationv1.Mutation) []FieldExpression {
	var out []FieldExpression
	for i, m := range mutations {
		switch {
		case m.JSONPatch != nil && m.ApplyConfiguration != nil:
			// Reported by checkPatchTypes; neither is run.
		case m.JSONPatch != nil:
			out = append(out, FieldExpression{Field: fmt.Sprintf("spec.mutations[%d].jsonPatch.expression", i), Accessor: &patch.JSONPatchCondition{Expression: m.JSONPatch.Expression}})
		case m.ApplyConfiguration != nil:
			out = append(out, FieldExpression{Field: fmt.Sprintf("spec.mutations[%d].applyConfiguration.expression", i), Accessor: &patch.ApplyConfigurationCondition{Expression: m.ApplyConfiguration.Expression}})
		}
	}
	return out
}

// checkingEnvSet is the runtime environment with object, oldObject and params
// typed where their types are known.
func checkingEnvSet(base *environment.EnvSet, objectType, paramsType *apiservercel.DeclType, hasParams, patchTypes bool) (*environment.EnvSet, error) {
	requestType := plugincel.BuildRequestType()
	namespaceType := plugincel.BuildNamespaceType()
	declTypes := []*apiservercel.DeclType{namespaceType, requestType}
	opts := []cel.EnvOption{
		cel.Variable(plugincel.NamespaceVarName, namespaceType.CelType()),
		cel.Variable(plugincel.RequestVarName, requestType.CelType()),
		cel.Variable(plugincel.AuthorizerVarName, library.AuthorizerType),
		cel.Variable(plugincel.RequestResourceAuthorizerVarName, library.ResourceCheckType),
	}
	opts = append(opts, typedVariables(objectType, plugincel.ObjectVarName, plugincel.OldObjectVarName)...)
	if objectType != nil {
		declTypes = append(declTypes, objectType)
	}
	if hasParams {
		opts = append(opts, typedVariables(paramsType, plugincel.ParamsVarName)...)
		if paramsType != nil && paramsType != objectType {
			declTypes = append(declTypes, paramsType)
		}
	}
	envSet, err := base.Extend(environment.VersionedOptions{
		IntroducedVersion: version.MajorMinor(1, 0),
		EnvOptions:        opts,
		DeclTypes:         declTypes,
	}, environment.StrictCostOpt)
	if err != nil || !patchTypes {
		return envSet, err
	}
	// A separate extension, as at run time: declaring types above replaces
	// the type provider, and the patch types need theirs on top.
	return envSet.Extend(environment.VersionedOptions{
		IntroducedVersion: version.MajorMinor(1, 0),
		EnvOptions: []cel.EnvOption{
			common.ResolverEnvOption(&mutation.DynamicTypeResolver{}),
			environment.UnversionedLib(library.JSONPatch),
		},
	})
}

// typedVariables declares names with declType's CEL type, or dyn when it is nil.
func typedVariables(declType *apiservercel.DeclType, names ...string) []cel.EnvOption {
	t := cel.DynType
	if declType != nil {
		t = declType.CelType()
	}
	opts := make([]cel.EnvOption, len(names))
	for i, name := range names {
		opts[i] = cel.Variable(name, t)
	}
	return opts
}

// checkingCompiler compiles like the runtime compiler (same return-type rules)
// but in the typed environment and without building a program.
type checkingCompiler struct {
	composited  *plugincel.CompositedCompiler
	returnTypes bool
	// estimator, when set, estimates each expression's cost into costs.
	estimator *costEstimator
	costs     map[plugincel.ExpressionAccessor]uint64
}

func (c *checkingCompiler) CompileCELExpression(accessor plugincel.ExpressionAccessor, _ plugincel.OptionalVariableDeclarations, mode environment.Type) plugincel.CompilationResult {
	fail := func(detail string) plugincel.CompilationResult {
		return plugincel.CompilationResult{ExpressionAccessor: accessor, Error: &apiservercel.Error{Type: apiservercel.ErrorTypeInvalid, Detail: detail}}
	}
	env, err := c.composited.Env(mode)
	if err != nil {
		return fail(fmt.Sprintf("building the CEL environment: %v", err))
	}
	ast, issues := env.Compile(accessor.GetExpression())
	if issues != nil {
		return fail(strings.TrimSpace(issues.String()))
	}
	if c.returnTypes {
		if err := checkReturnType(ast.OutputType(), accessor.ReturnTypes()); err != nil {
			return fail(err.Error())
		}
	}
	if c.estimator != nil {
		estimate, err := env.EstimateCost(ast, c.estimator)
		if err != nil {
			return fail(fmt.Sprintf("estimating the cost: %v", err))
		}
		c.costs[accessor] = estimate.Max
	}
	return plugincel.CompilationResult{ExpressionAccessor: accessor, OutputType: ast.OutputType()}
}

// checkReturnType applies the runtime compiler's rule: the output type must be
// exactly one of the wanted types, unless any type is wanted.
func checkReturnType(got *cel.Type, want []*cel.Type) error {
	for _, w := range want {
		if got.IsExactType(w) || cel.AnyType.IsExactType(w) {
			return nil
		}
	}
	names := make([]string, len(want))
	for i, w := range want {
		names[i] = w.String()
	}
	return errors.New("must evaluate to " + strings.Join(names, " or ") + " but evaluates to " + got.String())
}

// NewTypeChecker checks expressions in envSet against the schemas of the
// kinds mapper knows.
func NewTypeChecker(envSet *environment.EnvSet, schemas resolver.SchemaResolver, mapper meta.RESTMapper) *TypeChecker {
	return &TypeChecker{envSet: envSet, schemas: schemas, mapper: mapper}
}
