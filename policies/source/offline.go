package source

import (
	"maps"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/inventory"
	"github.com/doris-admission/doris-admission/policies/schema"
)

// Offline is the engine's configuration without a cluster: built-in
// kinds and schemas from the embedded snapshot; the documents at hand as
// the cluster's objects, for namespaces, policy parameters and the lookups of
// the CEL functions. A namespace
// that is not among them is taken to exist with only the label the API
// server puts on every namespace.
func Offline(docs []policies.Document) Config {
	namespaces := map[string]*corev1.Namespace{}
	nodePorts := inventory.NewNodePorts()
	objects := OfflineObjects(docs)
	for _, obj := range objects {
		ns := &corev1.Namespace{}
		if obj.GroupVersionKind() == corev1.SchemeGroupVersion.WithKind("Namespace") && runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, ns) == nil {
			namespaces[ns.Name] = ns
		}
	}
	// The node ports fill up as documents are admitted (Engine.Admitted), in
	// order, as kubectl apply would create them.
	nodePorts.MarkSynced()
	return Config{
		Mapper:     schema.BuiltinRESTMapper(),
		Schemas:    &schema.Builtin{},
		Namespaces: offlineNamespaces(namespaces),
		Objects:    objects,
		NodePorts:  nodePorts,
	}
}

// OfflineObjects are copies of the documents' objects as the cluster would
// hold them: a namespaced object without a namespace is in "default", where
// kubectl would create it.
func OfflineObjects(docs []policies.Document) Objects {
	mapper := schema.BuiltinRESTMapper()
	objects := make(Objects, len(docs))
	for i, doc := range docs {
		obj := doc.Object.DeepCopy()
		gvk := obj.GroupVersionKind()
		if mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil && mapping.Scope.Name() == meta.RESTScopeNameNamespace && obj.GetNamespace() == "" {
			obj.SetNamespace("default")
		}
		objects[i] = obj
	}
	return objects
}

// offlineNamespaces is a NamespaceLister over the given namespaces that
// answers for any other name too, so matching never needs a cluster.
type offlineNamespaces map[string]*corev1.Namespace

func (o offlineNamespaces) List(selector labels.Selector) ([]*corev1.Namespace, error) {
	var out []*corev1.Namespace
	for _, ns := range o {
		if selector.Matches(labels.Set(ns.Labels)) {
			out = append(out, ns)
		}
	}
	return out, nil
}

func (o offlineNamespaces) Get(name string) (*corev1.Namespace, error) {
	if ns, ok := o[name]; ok {
		return ns, nil
	}
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelMetadataName: name}},
	}, nil
}

// NamespacesFor returns a Namespace document, with labels, for each namespace
// the documents are in that none of them defines, so namespaceSelector and
// namespaceObject see what the cluster would.
// A document without a namespace is taken to go to "default".
func NamespacesFor(docs []policies.Document, namespaceLabels map[string]string) []policies.Document {
	defined := map[string]bool{}
	for _, doc := range docs {
		if doc.Object.GroupVersionKind() == corev1.SchemeGroupVersion.WithKind("Namespace") {
			defined[doc.Object.GetName()] = true
		}
	}
	var out []policies.Document
	for _, doc := range docs {
		name := doc.Object.GetNamespace()
		if name == "" && doc.Object.GroupVersionKind() != corev1.SchemeGroupVersion.WithKind("Namespace") {
			name = "default"
		}
		if name == "" || defined[name] {
			continue
		}
		defined[name] = true
		ns := &unstructured.Unstructured{}
		ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
		ns.SetName(name)
		nsLabels := map[string]string{corev1.LabelMetadataName: name}
		maps.Copy(nsLabels, namespaceLabels)
		ns.SetLabels(nsLabels)
		out = append(out, policies.Document{Origin: "--namespace-labels", Index: len(out) + 1, Object: ns})
	}
	return out
}
