package schema

import (
	_ "embed"
	"encoding/json"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// resourcesJSON lists the built-in resources with their kinds and scopes, as
// kube-apiserver's discovery reported them to ./snapshot.
//
//go:embed openapi/resources.json
var resourcesJSON []byte

var builtinMapper = sync.OnceValue(func() meta.RESTMapper {
	var resources []struct {
		GroupVersion string `json:"groupVersion"`
		Resource     string `json:"resource"`
		Kind         string `json:"kind"`
		Namespaced   bool   `json:"namespaced"`
	}
	if err := json.Unmarshal(resourcesJSON, &resources); err != nil {
		panic("the embedded resources.json is corrupt: " + err.Error())
	}
	mapper := meta.NewDefaultRESTMapper(nil)
	for _, r := range resources {
		gv, err := schema.ParseGroupVersion(r.GroupVersion)
		if err != nil {
			panic("the embedded resources.json is corrupt: " + err.Error())
		}
		scope := meta.RESTScopeRoot
		if r.Namespaced {
			scope = meta.RESTScopeNamespace
		}
		mapper.AddSpecific(gv.WithKind(r.Kind), gv.WithResource(r.Resource), gv.WithResource(strings.ToLower(r.Kind)), scope)
	}
	return mapper
})

// BuiltinRESTMapper maps the kinds kube-apiserver serves itself to their
// resources and back, without a cluster.
func BuiltinRESTMapper() meta.RESTMapper {
	return builtinMapper()
}
