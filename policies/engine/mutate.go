package engine

import (
	"context"
	"fmt"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	celconfig "k8s.io/apiserver/pkg/apis/cel"

	"github.com/doris-admission/doris-admission/policies/compile"
	"github.com/doris-admission/doris-admission/policies/jsonpatch"
)

// MutateResult is what the mutating policies made of a request's object.
type MutateResult struct {
	// Object is the mutated object; nil when no policy changed it.
	Object *unstructured.Unstructured
	// Applied names the policies that changed the object, in order.
	Applied []string
	// Warnings are for the client: policies that failed and were ignored.
	Warnings []string
}

// PolicyError is a policy that could not be evaluated and whose failurePolicy
// is Fail, so the request must be rejected.
type PolicyError struct {
	Policy     string
	Field      string
	Expression string
	Err        error
}

func (e *PolicyError) Error() string {
	switch {
	case e.Field == "":
		return fmt.Sprintf("policy %s failed: %v", e.Policy, e.Err)
	case e.Expression == "":
		return fmt.Sprintf("policy %s failed at %s: %v", e.Policy, e.Field, e.Err)
	}
	return fmt.Sprintf("policy %s failed at %s (expression %q): %v", e.Policy, e.Field, e.Expression, e.Err)
}

func (e *PolicyError) Unwrap() error { return e.Err }

// Mutate applies every matching MutatingPolicy to req's object, in order,
// each seeing the result of the ones before. A policy that asked for
// reinvocation runs once more if a later policy changed a part of the object
// it reads (see reads.go). A policy that fails with failurePolicy Fail fails
// the request with a *PolicyError; with Ignore, its changes are dropped and a
// warning says so.
func (e *Engine) Mutate(ctx context.Context, req *Request) (*MutateResult, error) {
	set := e.current.Load()
	ctx = WithRequestBudget(ctx)
	result := &MutateResult{}
	if req.GetObject() == nil || len(set.mutating) == 0 || !set.mutatingResources.MayMatch(req.GetResource().Resource) {
		return result, nil
	}
	var versioned *admission.VersionedAttributes
	// writes[i] are the parts of the object the i-th policy changed; a
	// reinvoked policy's changes come after everything of the first pass.
	writes := make([][]compile.ObjectPath, len(set.mutating)+1)
	for i, c := range set.mutating {
		if !set.serves(req, c) {
			continue
		}
		written, err := e.mutateWith(ctx, c, req, &versioned, result)
		if err != nil {
			return nil, err
		}
		writes[i] = written
	}
	for i, c := range set.mutating {
		if !set.serves(req, c) || c.Mutating.Spec.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy || !e.touchedAfter(c, writes[i+1:]) {
			continue
		}
		written, err := e.mutateWith(ctx, c, req, &versioned, result)
		if err != nil {
			return nil, err
		}
		writes[len(set.mutating)] = append(writes[len(set.mutating)], written...)
	}
	if len(result.Applied) > 0 {
		content, err := toUnstructured(versioned.VersionedObject.Object())
		if err != nil {
			return nil, fmt.Errorf("reading the mutated object: %w", err)
		}
		result.Object = &unstructured.Unstructured{Object: content}
	}
	return result, nil
}

// touchedAfter tells whether the changes made after c ran touch what c reads.
func (e *Engine) touchedAfter(c *compile.Compiled, writes [][]compile.ObjectPath) bool {
	for _, written := range writes {
		for _, w := range written {
			if e.reinvokeOnAnyChange || c.Reads.TouchedBy(w) {
				return true
			}
		}
	}
	return false
}

// mutateWith applies one policy; it returns the parts of the object it
// changed, none when it changed nothing.
func (e *Engine) mutateWith(ctx context.Context, c *compile.Compiled, req *Request, versioned **admission.VersionedAttributes, result *MutateResult) ([]compile.ObjectPath, error) {
	ok, gvr, err := e.match(c, req, versioned)
	if err == nil && !ok {
		return nil, nil
	}
	start := time.Now()
	before := (*versioned)
	var written []compile.ObjectPath
	if err == nil {
		snapshot := before.VersionedObject.Object()
		written, err = e.applyPatches(ctx, c, req, gvr, before)
		if err != nil {
			before.VersionedObject.Set(snapshot)
		}
	}
	observe(c, start, err != nil)
	if err == nil {
		if len(written) > 0 {
			result.Applied = append(result.Applied, c.Name())
		}
		return written, nil
	}
	if c.Failure == admissionregistrationv1.Ignore {
		result.Warnings = append(result.Warnings, ignoredFailure(c.Name(), err).String())
		return nil, nil
	}
	return nil, err
}

// applyPatches runs c's matchConditions and mutations on versioned, once per
// parameter object; it returns the parts of the object they changed.
func (e *Engine) applyPatches(ctx context.Context, c *compile.Compiled, req *Request, gvr schema.GroupVersionResource, versioned *admission.VersionedAttributes) ([]compile.ObjectPath, error) {
	ns, params, err := e.inputs(ctx, c, req)
	if err != nil {
		return nil, err
	}
	var written []compile.ObjectPath
	for _, param := range params {
		writtenByParam, err := e.patchOnce(c.Compiler.CreateContext(ctx), c, gvr, versioned, ns, param)
		if err != nil {
			return nil, err
		}
		written = append(written, writtenByParam...)
	}
	return written, nil
}

// inputs are what c's expressions see besides the object: the request's
// namespace and c's parameter objects.
func (e *Engine) inputs(ctx context.Context, c *compile.Compiled, req *Request) (*corev1.Namespace, []runtime.Object, error) {
	if c.Broken != nil {
		return nil, nil, &PolicyError{Policy: c.Name(), Field: "spec", Err: c.Broken}
	}
	ns, err := e.namespace(ctx, req)
	if err != nil {
		return nil, nil, &PolicyError{Policy: c.Name(), Err: err}
	}
	params, err := e.params(ctx, c, req)
	if err != nil {
		return nil, nil, &PolicyError{Policy: c.Name(), Field: "spec.paramRef", Err: err}
	}
	return ns, params, nil
}

// patchOnce evaluates c's matchConditions and applies its mutations in
// order, each to the result of the one before; it returns the parts of the
// object they changed (the whole object for an ApplyConfiguration).
func (e *Engine) patchOnce(ctx context.Context, c *compile.Compiled, gvr schema.GroupVersionResource, versioned *admission.VersionedAttributes, ns *corev1.Namespace, param runtime.Object) ([]compile.ObjectPath, error) {
	if c.Conditions != nil {
		match := c.Conditions.Match(ctx, versioned, param, nil)
		if match.Error != nil {
			return nil, &PolicyError{Policy: c.Name(), Field: "spec.matchConditions", Err: match.Error}
		}
		if !match.Matches {
			return nil, nil
		}
	}
	var written []compile.ObjectPath
	for i, patcher := range c.Patchers {
		request := patch.Request{
			MatchedResource:     gvr,
			VersionedAttributes: versioned,
			ObjectInterfaces:    e.interfaces,
			OptionalVariables:   plugincel.OptionalVariableBindings{VersionedParams: param},
			Namespace:           ns,
			TypeConverter:       e.converter,
		}
		var obj runtime.Object
		var writtenByPatch []compile.ObjectPath
		var err error
		if jp, ok := patcher.(*jsonpatch.Patcher); ok {
			// It says what it changed.
			var ops []jsonpatch.Op
			obj, ops, err = jp.PatchOps(ctx, request, celconfig.RuntimeCELCostBudget, patchMemo(ctx))
			writtenByPatch = compile.OpsWrites(ops)
		} else {
			before := versioned.VersionedObject.Object()
			obj, err = patcher.Patch(ctx, request, celconfig.RuntimeCELCostBudget)
			if err == nil {
				writtenByPatch = compile.ChangedParts(before, obj)
			}
		}
		if err != nil {
			field, expression := mutationField(c, i)
			return nil, &PolicyError{Policy: c.Name(), Field: field, Expression: expression, Err: err}
		}
		if len(writtenByPatch) > 0 {
			versioned.UpdateObject(obj)
			written = append(written, writtenByPatch...)
		}
	}
	return written, nil
}

// mutationField names the i-th mutation of c and its expression.
func mutationField(c *compile.Compiled, i int) (string, string) {
	exprs := compile.MutationExpressions(c.Mutating.Spec.Mutations)
	if i >= len(exprs) {
		return "spec.mutations", ""
	}
	return exprs[i].Field, exprs[i].Accessor.GetExpression()
}
