package compile

import (
	"fmt"
	"sync"

	"github.com/google/cel-go/cel"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/util/version"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	"k8s.io/apiserver/pkg/cel/environment"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/api/v1alpha1"
	"github.com/doris-admission/doris-admission/policies/inventory"
	"github.com/doris-admission/doris-admission/policies/jsonpatch"
	dorislib "github.com/doris-admission/doris-admission/policies/library"
)

// CompatibilityVersion is the Kubernetes version whose CEL environment and
// libraries policies are compiled with, so an expression means here what it
// means in a native admission policy on that version.
var CompatibilityVersion = version.MajorMinor(1, 37)

// KubernetesEnvSet is the Kubernetes base CEL environment, built once.
var KubernetesEnvSet = sync.OnceValue(func() *environment.EnvSet {
	return environment.MustBaseEnvSet(CompatibilityVersion)
})

// EnvSet is the Kubernetes environment with the functions of
// ./library, which read cluster and the node port index.
func EnvSet(cluster dorislib.Cluster, nodePorts *inventory.NodePorts) (*environment.EnvSet, error) {
	return KubernetesEnvSet().Extend(environment.VersionedOptions{
		IntroducedVersion: version.MajorMinor(1, 0),
		EnvOptions:        []cel.EnvOption{dorislib.Doris(cluster), dorislib.Inventory(nodePorts)},
	})
}

// Compiled is a policy ready to evaluate. Compile errors are kept as data: the
// evaluators report them at admission time, where failurePolicy decides.
type Compiled struct {
	policies.Policy
	Criteria *Criteria
	Failure  admissionregistrationv1.FailurePolicyType
	// Problems are the compile and type-check errors found at load time.
	Problems []ExpressionError
	// Costs are the estimated worst-case costs of the expressions.
	Costs []ExpressionCost

	// A ValidatingPolicy's checks and what a failure does.
	Validator validating.Validator
	Actions   []admissionregistrationv1.ValidationAction

	// A MutatingPolicy's conditions and patches, and its compiler, which makes
	// the per-request context its variables are evaluated in.
	Conditions matchconditions.Matcher
	Patchers   []patch.Patcher
	Compiler   *plugincel.CompositedCompiler
	// Group is the ID of the webhook group that serves the policy.
	Group string
	// Broken is why the policy's CEL environment did not build: every
	// evaluation of the policy fails with it, per its failurePolicy.
	Broken error
	// Reads is what the mutating policy's expressions may read of the
	// object, which decides whether a later change reinvokes it.
	Reads *ObjectReads
	// Generators are a MutatingPolicy's generate expressions, in order.
	Generators []plugincel.ConditionEvaluator
}

// Policy turns a policy into evaluators. It never fails: whatever does not
// compile is reported in Problems and enforced per failurePolicy.
func Policy(p policies.Policy, envSet *environment.EnvSet, checker *TypeChecker) *Compiled {
	c := &Compiled{Policy: p, Failure: admissionregistrationv1.Fail}
	Criteria, err := newCriteria(p.MatchConstraints())
	c.Criteria = Criteria
	if err != nil {
		c.Problems = append(c.Problems, ExpressionError{Field: "spec.matchConstraints", Message: err.Error()})
	}
	if p.Mutating != nil {
		c.compileMutating(p.Mutating, envSet)
	} else {
		c.compileValidating(p.Validating, envSet)
	}
	c.Group = groupOf(p, c.Failure)
	problems, costs := checker.check(p)
	c.Problems = append(c.Problems, problems...)
	c.Costs = costs
	return c
}

func (c *Compiled) compileValidating(p *v1alpha1.ValidatingPolicy, envSet *environment.EnvSet) {
	spec := p.Spec
	if spec.FailurePolicy != nil {
		c.Failure = *spec.FailurePolicy
	}
	c.Actions = spec.ValidationActions
	if len(c.Actions) == 0 {
		c.Actions = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}
	}
	opts := plugincel.OptionalVariableDeclarations{HasParams: spec.ParamKind != nil, HasAuthorizer: true}
	messageOpts := plugincel.OptionalVariableDeclarations{HasParams: spec.ParamKind != nil}
	compiler, err := plugincel.NewCompositedCompiler(envSet)
	if err != nil {
		c.breaks(err)
		return
	}
	compiler.CompileAndStoreVariables(variableAccessors(spec.Variables), opts, environment.StoredExpressions)
	validations := make([]plugincel.ExpressionAccessor, len(spec.Validations))
	messages := make([]plugincel.ExpressionAccessor, len(spec.Validations))
	for i, v := range spec.Validations {
		validations[i] = &validating.ValidationCondition{Expression: v.Expression, Message: v.Message, Reason: v.Reason}
		if v.MessageExpression != "" {
			messages[i] = &validating.MessageExpressionCondition{MessageExpression: v.MessageExpression}
		}
	}
	audits := make([]plugincel.ExpressionAccessor, len(spec.AuditAnnotations))
	for i, a := range spec.AuditAnnotations {
		audits[i] = &validating.AuditAnnotationCondition{Key: a.Key, ValueExpression: a.ValueExpression}
	}
	c.Validator = validating.NewValidator(
		recordedValidations{budgetedCondition{compiler.CompileCondition(validations, opts, environment.StoredExpressions)}},
		compileConditions(compiler, spec.MatchConditions, &c.Failure, p.Name, opts),
		budgetedCondition{compiler.CompileCondition(audits, opts, environment.StoredExpressions)},
		lazyMessages{budgetedCondition{compiler.CompileCondition(messages, messageOpts, environment.StoredExpressions)}},
		&c.Failure,
		nil,
	)
}

func (c *Compiled) compileMutating(p *v1alpha1.MutatingPolicy, envSet *environment.EnvSet) {
	spec := p.Spec
	if spec.FailurePolicy != nil {
		c.Failure = *spec.FailurePolicy
	}
	opts := plugincel.OptionalVariableDeclarations{HasParams: spec.ParamKind != nil, HasAuthorizer: true}
	compiler, err := plugincel.NewCompositedCompiler(envSet)
	if err != nil {
		c.breaks(err)
		return
	}
	c.Compiler = compiler
	c.Reads = &ObjectReads{all: true}
	if env, err := envSet.Env(environment.StoredExpressions); err == nil {
		c.Reads = mutatingReads(env, policies.Policy{Mutating: p})
	}
	compiler.CompileAndStoreVariables(variableAccessors(spec.Variables), opts, environment.StoredExpressions)
	c.Conditions = compileConditions(compiler, spec.MatchConditions, &c.Failure, p.Name, opts)
	patchOpts := opts
	patchOpts.HasPatchTypes = true
	c.Problems = append(c.Problems, checkPatchTypes(spec.Mutations)...)
	// Their errors are reported by the type checker, with the other expressions'.
	for _, g := range spec.Generate {
		c.Generators = append(c.Generators, budgetedCondition{compiler.CompileCondition([]plugincel.ExpressionAccessor{generatorExpression(g.Expression)}, opts, environment.StoredExpressions)})
	}
	for _, m := range MutationExpressions(spec.Mutations) {
		evaluator := budgetedMutation{compiler.CompileMutatingEvaluator(m.Accessor, patchOpts, environment.StoredExpressions)}
		if _, ok := m.Accessor.(*patch.JSONPatchCondition); ok {
			c.Patchers = append(c.Patchers, jsonpatch.NewPatcher(evaluator))
		} else {
			c.Patchers = append(c.Patchers, patch.NewApplyConfigurationPatcher(evaluator))
		}
	}
	// From here on only the composition state is used (CreateContext, once
	// per evaluation). The compilers hold an environment for every
	// combination of optional variables, most of which no program of this
	// policy uses: let them go.
	compiler.Compiler, compiler.ConditionCompiler, compiler.MutatingCompiler = nil, nil, nil
}

// breaks records that the policy's CEL environment did not build: a load
// problem, and the error of every evaluation.
func (c *Compiled) breaks(err error) {
	c.Broken = fmt.Errorf("building the CEL environment: %w", err)
	c.Problems = append(c.Problems, ExpressionError{Field: "spec", Message: c.Broken.Error()})
}

// checkPatchTypes reports mutations whose patchType does not match the patch they carry.
func checkPatchTypes(mutations []admissionregistrationv1.Mutation) []ExpressionError {
	var problems []ExpressionError
	for i, m := range mutations {
		field := fmt.Sprintf("spec.mutations[%d]", i)
		switch {
		case m.JSONPatch != nil && m.ApplyConfiguration != nil:
			problems = append(problems, ExpressionError{Field: field, Message: "set either jsonPatch or applyConfiguration, not both"})
		case m.JSONPatch == nil && m.ApplyConfiguration == nil:
			problems = append(problems, ExpressionError{Field: field, Message: "set jsonPatch or applyConfiguration"})
		case m.JSONPatch != nil && m.PatchType != admissionregistrationv1.PatchTypeJSONPatch,
			m.ApplyConfiguration != nil && m.PatchType != admissionregistrationv1.PatchTypeApplyConfiguration:
			problems = append(problems, ExpressionError{Field: field + ".patchType", Message: fmt.Sprintf("patchType %q does not match the patch: use JSONPatch with jsonPatch, ApplyConfiguration with applyConfiguration", m.PatchType)})
		}
	}
	return problems
}

func variableAccessors(variables []admissionregistrationv1.Variable) []plugincel.NamedExpressionAccessor {
	out := make([]plugincel.NamedExpressionAccessor, len(variables))
	for i, v := range variables {
		out[i] = &validating.Variable{Name: v.Name, Expression: v.Expression}
	}
	return out
}

// generatorExpression is a generate expression: any value (an object or null).
type generatorExpression string

func (g generatorExpression) GetExpression() string    { return string(g) }
func (g generatorExpression) ReturnTypes() []*cel.Type { return []*cel.Type{cel.AnyType} }
