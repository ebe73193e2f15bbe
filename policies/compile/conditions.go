package compile

import (
	"context"
	"strings"
	"sync"
	"unique"

	"github.com/google/cel-go/common"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/parser"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/cel/environment"
)

// Policies written for the same objects often begin with the same
// matchConditions: every Doris built-in asks whether the object is Doris
// (dorisRole(object) != '') and whether it opted out. Conditions that read
// neither the policy's params nor its variables give every policy the same
// answer for the same object in the same request, so the first policy to
// ask evaluates them and the others read its answer. A mutation that changes
// the object makes a new one, which is asked about afresh.

// sharedMatcher is a Matcher whose answers the policies with the same
// conditions share within a request.
type sharedMatcher struct {
	matchconditions.Matcher
	// conditions identify the condition list and the failure policy that
	// decides an evaluation error's answer.
	conditions unique.Handle[string]
}

// answerKey is one question: the conditions about one version of the
// object (and the old object, which a condition may read too).
type answerKey struct {
	conditions        unique.Handle[string]
	object, oldObject runtime.Object
}

// sharedAnswers are the answers given so far in a request. The objects
// they key on stay alive with them, so a new object cannot take an old
// one's address.
type sharedAnswers struct {
	mu      sync.Mutex
	answers map[answerKey]matchconditions.MatchResult
}

func (m sharedMatcher) Match(ctx context.Context, attr *admission.VersionedAttributes, params runtime.Object, authz authorizer.UnconditionalAuthorizer) matchconditions.MatchResult {
	request := requestOf(ctx)
	if request == nil {
		return m.Matcher.Match(ctx, attr, params, authz)
	}
	key := answerKey{conditions: m.conditions, object: attr.VersionedObject.Object(), oldObject: attr.VersionedOldObject.Object()}
	shared := &request.answers
	shared.mu.Lock()
	answer, ok := shared.answers[key]
	shared.mu.Unlock()
	if ok {
		return answer
	}
	answer = m.Matcher.Match(ctx, attr, params, authz)
	shared.mu.Lock()
	if shared.answers == nil {
		shared.answers = map[answerKey]matchconditions.MatchResult{}
	}
	shared.answers[key] = answer
	shared.mu.Unlock()
	return answer
}

// compileConditions compiles matchConditions, or returns nil when there are
// none. Conditions that may be shared (see sharesAnswers) answer once per
// object version and request.
func compileConditions(compiler *plugincel.CompositedCompiler, conditions []admissionregistrationv1.MatchCondition, failure *admissionregistrationv1.FailurePolicyType, name string, opts plugincel.OptionalVariableDeclarations) matchconditions.Matcher {
	if len(conditions) == 0 {
		return nil
	}
	accessors := make([]plugincel.ExpressionAccessor, len(conditions))
	for i := range conditions {
		accessors[i] = (*matchconditions.MatchCondition)(&conditions[i])
	}
	matcher := matchconditions.NewMatcher(budgetedCondition{compiler.CompileCondition(accessors, opts, environment.StoredExpressions)}, failure, "policy", "validate", name)
	if !sharesAnswers(conditions) {
		return matcher
	}
	var key strings.Builder
	key.WriteString(string(*failure))
	for _, c := range conditions {
		key.WriteString("\x00" + c.Name + "\x00" + c.Expression)
	}
	return sharedMatcher{Matcher: matcher, conditions: unique.Make(key.String())}
}

// policyOwnNames are the variables through which an expression reads what
// belongs to its policy rather than to the request.
var policyOwnNames = map[string]bool{plugincel.ParamsVarName: true, plugincel.VariableVarName: true}

// sharesAnswers tells whether conditions read only the request, so any
// policy asking them gets the same answer: every expression parses and names
// neither params nor variables (anywhere, even as a comprehension's own
// variable: when unsure, a policy evaluates its own).
func sharesAnswers(conditions []admissionregistrationv1.MatchCondition) bool {
	p, err := parser.NewParser(parser.Macros(parser.AllMacros...), parser.EnableOptionalSyntax(true))
	if err != nil {
		return false
	}
	for _, c := range conditions {
		parsed, issues := p.Parse(common.NewTextSource(c.Expression))
		if len(issues.GetErrors()) > 0 {
			return false
		}
		own := false
		celast.PreOrderVisit(parsed.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
			switch e.Kind() {
			case celast.IdentKind:
				own = own || policyOwnNames[e.AsIdent()]
			case celast.ComprehensionKind:
				comp := e.AsComprehension()
				own = own || policyOwnNames[comp.IterVar()] || policyOwnNames[comp.IterVar2()] || policyOwnNames[comp.AccuVar()]
			}
		}))
		if own {
			return false
		}
	}
	return true
}
