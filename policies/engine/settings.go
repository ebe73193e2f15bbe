package engine

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/source"
)

// withSettings makes the settings ConfigMap of the built-in policies always
// found: the one in namespace, with every key it leaves out taken from the
// defaults, or the defaults alone.
type withSettings struct {
	source.ObjectSource
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

func newWithSettings(objects source.ObjectSource, namespace string, settings map[string]string) withSettings {
	defaults, err := builtin.DefaultSettings(namespace, settings)
	return withSettings{ObjectSource: objects, namespace: namespace, defaults: defaults, defaultsErr: err, last: &atomic.Pointer[mergedSettings]{}}
}

var configMapKind = schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}

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
		return o.GetName() == builtin.SettingsName && o.GetNamespace() == w.namespace
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
