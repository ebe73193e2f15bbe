package policies

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/doris-admission/doris-admission/policies/schema"
)

// OfflineConfig is the engine's configuration without a cluster: built-in
// kinds and schemas from the embedded snapshot, and the namespaces given (the
// Namespace objects among the input). A namespace that is not given is taken
// to exist with only the label the API server puts on every namespace.
func OfflineConfig(namespaces []*corev1.Namespace) Config {
	known := map[string]*corev1.Namespace{}
	for _, ns := range namespaces {
		known[ns.Name] = ns
	}
	return Config{
		Mapper:     schema.BuiltinRESTMapper(),
		Schemas:    &schema.Builtin{},
		Namespaces: offlineNamespaces(known),
	}
}

// NamespacesIn returns the Namespace objects among docs.
func NamespacesIn(docs []Document) []*corev1.Namespace {
	var out []*corev1.Namespace
	for _, doc := range docs {
		if doc.Object.GetAPIVersion() != "v1" || doc.Object.GetKind() != "Namespace" {
			continue
		}
		ns := &corev1.Namespace{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(doc.Object.Object, ns); err == nil {
			out = append(out, ns)
		}
	}
	return out
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
