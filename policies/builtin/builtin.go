package builtin

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/doris-admission/doris-admission/policies"
)

// DefaultNamespace is where the server runs unless told otherwise, and so
// where the built-in policies' settings are looked up.
const DefaultNamespace = "doris-admission"

// SettingsName is the ConfigMap the built-in policies read as params.
const SettingsName = "doris-admission-settings"

// Builtin returns the built-in policies but those named in disabled, with
// their settings looked up in namespace. Naming a policy that does not exist
// is an error, so a typo does not leave a policy on.
func Builtin(namespace string, disabled []string) ([]policies.Policy, error) {
	files, err := fs.Glob(Policies, "*.yaml")
	if err != nil {
		return nil, err
	}
	var out []policies.Policy
	var errs []error
	for _, file := range files {
		f, err := Policies.Open(file)
		if err != nil {
			return nil, err
		}
		docs, err := policies.DecodeStream(file, f)
		f.Close()
		errs = append(errs, err)
		for _, doc := range docs {
			p, err := policies.PolicyFromDocument(doc)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			p.Origin = policies.OriginBuiltin
			if ref := p.ParamRef(); ref != nil && ref.Name == SettingsName {
				ref.Namespace = namespace
			}
			out = append(out, p)
		}
	}
	for _, name := range disabled {
		i := slices.IndexFunc(out, func(p policies.Policy) bool { return p.Name() == name })
		if i < 0 {
			errs = append(errs, fmt.Errorf("there is no built-in policy %q to disable; doris-admission policy list names them", name))
			continue
		}
		out = slices.Delete(out, i, i+1)
	}
	return out, errors.Join(errs...)
}

// DefaultSettings decodes the embedded settings ConfigMap, with settings in
// place of its values.
func DefaultSettings(namespace string, settings map[string]string) (*unstructured.Unstructured, error) {
	obj, err := policies.DecodeObject(Settings)
	if err != nil {
		return nil, fmt.Errorf("the embedded settings are corrupt: %w", err)
	}
	obj.SetNamespace(namespace)
	data, _, _ := unstructured.NestedStringMap(obj.Object, "data")
	maps.Copy(data, settings)
	return obj, unstructured.SetNestedStringMap(obj.Object, data, "data")
}
