package engine

import (
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
)

// Request is one admission request as the policies see it.
type Request struct {
	admission.Attributes
	// Group is the webhook group that sent the request (WebhookGroup.ID):
	// only the policies it serves evaluate it. "" for every policy.
	Group string
}

// RequestFromAdmission turns an AdmissionReview request into a Request. The
// objects are decoded once, as unstructured, whatever their kind.
func RequestFromAdmission(req *admissionv1.AdmissionRequest) (*Request, error) {
	obj, err := decodeRaw(req.Object)
	if err != nil {
		return nil, fmt.Errorf("decoding object: %w", err)
	}
	old, err := decodeRaw(req.OldObject)
	if err != nil {
		return nil, fmt.Errorf("decoding oldObject: %w", err)
	}
	userInfo := &user.DefaultInfo{Name: req.UserInfo.Username, UID: req.UserInfo.UID, Groups: req.UserInfo.Groups}
	if len(req.UserInfo.Extra) > 0 {
		userInfo.Extra = map[string][]string{}
		for k, v := range req.UserInfo.Extra {
			userInfo.Extra[k] = v
		}
	}
	dryRun := req.DryRun != nil && *req.DryRun
	attrs := admission.NewAttributesRecord(obj, old,
		schema.GroupVersionKind(req.Kind), req.Namespace, req.Name,
		schema.GroupVersionResource(req.Resource), req.SubResource,
		admission.Operation(req.Operation), nil, dryRun, userInfo)
	return &Request{Attributes: attrs}, nil
}

// decodeRaw decodes raw JSON into an unstructured object, or nil when empty.
func decodeRaw(raw runtime.RawExtension) (runtime.Object, error) {
	if len(raw.Raw) == 0 {
		return nil, nil
	}
	var content map[string]any
	if err := utiljson.Unmarshal(raw.Raw, &content); err != nil {
		return nil, err
	}
	if content == nil {
		return nil, nil
	}
	return &unstructured.Unstructured{Object: content}, nil
}

// RequestForObject is the CREATE request that applying obj would make. The
// engine's mapper finds its resource; a namespaced object without a namespace
// goes to "default", as kubectl does.
func (e *Engine) RequestForObject(obj *unstructured.Unstructured) (*Request, error) {
	return e.RequestForUpdate(obj, nil)
}

// RequestForUpdate is the UPDATE request that applying obj over old would
// make, or the CREATE request when old is nil.
func (e *Engine) RequestForUpdate(obj, old *unstructured.Unstructured) (*Request, error) {
	if old == nil {
		return e.request(admission.Create, obj, obj, nil)
	}
	return e.request(admission.Update, obj, obj, old.DeepCopy())
}

// RequestForDelete is the DELETE request of old: no object, old as the
// oldObject.
func (e *Engine) RequestForDelete(old *unstructured.Unstructured) (*Request, error) {
	return e.request(admission.Delete, old, nil, old.DeepCopy())
}

// request is operation on the resource of about (the object or, for a
// DELETE, the old object).
func (e *Engine) request(operation admission.Operation, about, obj *unstructured.Unstructured, old runtime.Object) (*Request, error) {
	gvk := about.GroupVersionKind()
	mapping, err := e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("unknown kind %s in apiVersion %s: %w", gvk.Kind, gvk.GroupVersion(), err)
	}
	namespace := about.GetNamespace()
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace && namespace == "" {
		namespace = "default"
	}
	var object runtime.Object
	if obj != nil {
		object = obj.DeepCopy()
	}
	attrs := admission.NewAttributesRecord(object, old, gvk, namespace, about.GetName(),
		mapping.Resource, "", operation, nil, false, &user.DefaultInfo{})
	return &Request{Attributes: attrs}, nil
}
