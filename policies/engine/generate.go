package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"

	"github.com/google/cel-go/common/types"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	celconfig "k8s.io/apiserver/pkg/apis/cel"

	"github.com/doris-admission/doris-admission/policies/compile"
	"github.com/doris-admission/doris-admission/policies/source"
)

// GeneratedByAnnotation names the policy and generation that created an
// object: "<policy>/<generation>".
const GeneratedByAnnotation = "policies.doris-admission.io/generated-by"

// Generated is an object a policy's generate asks to exist beside the
// object it matched.
type Generated struct {
	Policy, Generation string
	// Object is what to create when no object of its kind and name exists.
	Object *unstructured.Unstructured
}

// Generate evaluates the generate expressions of every MutatingPolicy that
// matches obj as it is stored (a CREATE of obj, as the audit sees it). A
// policy whose expressions fail is reported in errs, whatever its
// failurePolicy: generation happens after admission, where nothing is
// rejected, so the failure is only reported.
func (e *Engine) Generate(ctx context.Context, obj *unstructured.Unstructured) (generated []Generated, errs []error) {
	set := e.current.Load()
	req, err := e.RequestForObject(obj)
	if err != nil {
		return nil, []error{err}
	}
	for _, c := range set.generating {
		var versioned *admission.VersionedAttributes
		ok, gvr, err := e.match(c, req, &versioned)
		if err == nil && ok {
			var out []Generated
			out, err = e.generateWith(WithRequestBudget(ctx), c, req, metav1.GroupVersionResource(gvr), versioned)
			generated = append(generated, out...)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return generated, errs
}

// generateWith evaluates c's matchConditions and generate expressions once
// per parameter object.
func (e *Engine) generateWith(ctx context.Context, c *compile.Compiled, req *Request, gvr metav1.GroupVersionResource, versioned *admission.VersionedAttributes) ([]Generated, error) {
	ns, params, err := e.inputs(ctx, c, req)
	if err != nil {
		return nil, err
	}
	admissionReq := plugincel.CreateAdmissionRequest(versioned.Attributes, gvr, metav1.GroupVersionKind(versioned.GetKind()))
	var out []Generated
	for _, param := range params {
		evalCtx := c.Compiler.CreateContext(ctx)
		if c.Conditions != nil {
			match := c.Conditions.Match(evalCtx, versioned, param, nil)
			if match.Error != nil {
				return nil, &PolicyError{Policy: c.Name(), Field: "spec.matchConditions", Err: match.Error}
			}
			if !match.Matches {
				continue
			}
		}
		for i, generator := range c.Generators {
			g := c.Mutating.Spec.Generate[i]
			results, _, err := generator.ForInput(evalCtx, versioned, admissionReq, plugincel.OptionalVariableBindings{VersionedParams: param}, ns, celconfig.RuntimeCELCostBudget)
			var obj *unstructured.Unstructured
			if err == nil {
				obj, err = generatedObject(results[0])
			}
			if err != nil {
				return nil, &PolicyError{Policy: c.Name(), Field: fmt.Sprintf("spec.generate[%d] (%s)", i, g.Name), Expression: g.Expression, Err: err}
			}
			name := g.Name
			if obj != nil {
				out = append(out, Generated{Policy: c.Name(), Generation: name, Object: own(obj, req, c.Name()+"/"+name)})
			}
		}
	}
	return out, nil
}

// generatedObject turns a generate expression's value into an object, or nil
// for null.
func generatedObject(r plugincel.EvaluationResult) (*unstructured.Unstructured, error) {
	if r.Error != nil {
		return nil, r.Error
	}
	if r.EvalResult == nil || r.EvalResult == types.NullValue {
		return nil, nil
	}
	native, err := r.EvalResult.ConvertToNative(reflect.TypeFor[*structpb.Value]())
	if err != nil {
		return nil, fmt.Errorf("the value is not an object: %w", err)
	}
	data, err := protojson.Marshal(native.(*structpb.Value))
	if err != nil {
		return nil, err
	}
	var content map[string]any
	if err := json.Unmarshal(data, &content); err != nil {
		return nil, fmt.Errorf("the value is not an object: %s", data)
	}
	obj := &unstructured.Unstructured{Object: content}
	if obj.GetAPIVersion() == "" || obj.GetKind() == "" || obj.GetName() == "" {
		return nil, fmt.Errorf("the object must have apiVersion, kind and metadata.name; got %s", data)
	}
	return obj, nil
}

// own places obj in the matched object's namespace, owned by it when it
// has a UID (a stored object), and marks who generated it.
func own(obj *unstructured.Unstructured, req *Request, generatedBy string) *unstructured.Unstructured {
	owner, _ := req.GetObject().(*unstructured.Unstructured)
	if obj.GetNamespace() == "" {
		obj.SetNamespace(req.GetNamespace())
	}
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[GeneratedByAnnotation] = generatedBy
	obj.SetAnnotations(annotations)
	if owner != nil && owner.GetUID() != "" && len(obj.GetOwnerReferences()) == 0 {
		ref := metav1.NewControllerRef(owner, owner.GroupVersionKind())
		// Blocking the owner's deletion would need update on its finalizers
		// where OwnerReferencesPermissionEnforcement is on.
		ref.BlockOwnerDeletion = nil
		obj.SetOwnerReferences([]metav1.OwnerReference{*ref})
	}
	return obj
}

// Missing keeps the generated objects that none of o is (same group, kind,
// namespace and name): what the generate controller would create in a
// cluster that holds o, which never touches an object that exists.
func Missing(o source.Objects, generated []Generated) []Generated {
	var out []Generated
	for _, g := range generated {
		exists := slices.ContainsFunc(o, func(obj *unstructured.Unstructured) bool {
			return obj.GroupVersionKind().GroupKind() == g.Object.GroupVersionKind().GroupKind() &&
				obj.GetNamespace() == g.Object.GetNamespace() && obj.GetName() == g.Object.GetName()
		})
		if !exists {
			out = append(out, g)
		}
	}
	return out
}
