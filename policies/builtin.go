package policies

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/doris-admission/doris-admission/policies/builtin"
)

// DefaultNamespace is where the server runs unless told otherwise, and so
// where the built-in policies' settings are looked up.
const DefaultNamespace = "doris-admission"

// settingsName is the ConfigMap the built-in policies read as params.
const settingsName = "doris-admission-settings"

// Builtin returns the built-in policies but those named in disabled, with
// their settings looked up in namespace. Naming a policy that does not exist
// is an error, so a typo does not leave a policy on.
func Builtin(namespace string, disabled []string) ([]Policy, error) {
	files, err := fs.Glob(builtin.Policies, "*.yaml")
	if err != nil {
		return nil, err
	}
	var out []Policy
	var errs []error
	for _, file := range files {
		f, err := builtin.Policies.Open(file)
		if err != nil {
			return nil, err
		}
		docs, err := decodeStream(file, f)
		f.Close()
		errs = append(errs, err)
		for _, doc := range docs {
			p, err := PolicyFromDocument(doc)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			p.Origin = OriginBuiltin
			if ref := paramRef(p); ref != nil && ref.Name == settingsName {
				ref.Namespace = namespace
			}
			out = append(out, p)
		}
	}
	for _, name := range disabled {
		i := slices.IndexFunc(out, func(p Policy) bool { return p.Name() == name })
		if i < 0 {
			errs = append(errs, fmt.Errorf("there is no built-in policy %q to disable; doris-admission policy list names them", name))
			continue
		}
		out = slices.Delete(out, i, i+1)
	}
	return out, errors.Join(errs...)
}

// withSettings makes the settings ConfigMap of the built-in policies always
// found: the one in namespace, with every key it leaves out taken from the
// defaults, or the defaults alone.
type withSettings struct {
	ObjectSource
	namespace string
	// defaults are the embedded settings, decoded once.
	defaults    *unstructured.Unstructured
	defaultsErr error
	// last is the latest merge, reused while the cluster's ConfigMap is the
	// same object: the policies of every request read the settings.
	last *atomic.Pointer[mergedSettings]
}

// mergedSettings are the settings made of the cluster's ConfigMap own (nil
// when there is none) and the defaults.
type mergedSettings struct {
	own, merged *unstructured.Unstructured
}

func newWithSettings(source ObjectSource, namespace string, settings map[string]string) withSettings {
	defaults, err := defaultSettings(namespace, settings)
	return withSettings{ObjectSource: source, namespace: namespace, defaults: defaults, defaultsErr: err, last: &atomic.Pointer[mergedSettings]{}}
}

var configMapKind = schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}

// defaultSettings decodes the embedded settings ConfigMap, with settings in
// place of its values.
func defaultSettings(namespace string, settings map[string]string) (*unstructured.Unstructured, error) {
	obj, err := decodeObject(builtin.Settings)
	if err != nil {
		return nil, fmt.Errorf("the embedded settings are corrupt: %w", err)
	}
	obj.SetNamespace(namespace)
	data, _, _ := unstructured.NestedStringMap(obj.Object, "data")
	maps.Copy(data, settings)
	return obj, unstructured.SetNestedStringMap(obj.Object, data, "data")
}

// Sync implements ObjectSource.
func (w withSettings) Sync(ctx context.Context, kind schema.GroupVersionKind) error {
	if w.ObjectSource == nil {
		return nil
	}
	return w.ObjectSource.Sync(ctx, kind)
}

// List implements ObjectSource.
func (w withSettings) List(ctx context.Context, kind schema.GroupVersionKind, namespace string, selector labels.Selector) ([]*unstructured.Unstructured, error) {
	var found []*unstructured.Unstructured
	if w.ObjectSource != nil {
		var err error
		if found, err = w.ObjectSource.List(ctx, kind, namespace, selector); err != nil {
			return nil, err
		}
	}
	if kind != configMapKind || (namespace != "" && namespace != w.namespace) {
		return found, nil
	}
	if w.defaultsErr != nil {
		return found, w.defaultsErr
	}
	if !selector.Matches(labels.Set(w.defaults.GetLabels())) {
		return found, nil
	}
	i := slices.IndexFunc(found, func(o *unstructured.Unstructured) bool {
		return o.GetName() == settingsName && o.GetNamespace() == w.namespace
	})
	var own *unstructured.Unstructured
	if i >= 0 {
		own = found[i]
	}
	merged, err := w.merge(own)
	if err != nil {
		return nil, err
	}
	if i < 0 {
		return append(found, merged), nil
	}
	found[i] = merged
	return found, nil
}

// merge is own with every key it leaves out taken from the defaults (the
// defaults alone for nil), made once per version of own. Like the objects of
// the informer cache, it is shared: the policies only read their params.
func (w withSettings) merge(own *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	if last := w.last.Load(); last != nil && last.own == own {
		return last.merged, nil
	}
	var merged *unstructured.Unstructured
	if own == nil {
		merged = w.defaults.DeepCopy()
	} else {
		merged = own.DeepCopy()
		data, _, _ := unstructured.NestedStringMap(w.defaults.Object, "data")
		ownData, _, _ := unstructured.NestedStringMap(own.Object, "data")
		maps.Copy(data, ownData)
		if err := unstructured.SetNestedStringMap(merged.Object, data, "data"); err != nil {
			return nil, err
		}
	}
	w.last.Store(&mergedSettings{own: own, merged: merged})
	return merged, nil
}
