package schema

import (
	"compress/gzip"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/cel/openapi/resolver"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// openAPIDocuments are kube-apiserver's OpenAPI v3 documents, one per group
// version, written by ./snapshot.
//
//go:embed openapi/*.json.gz
var openAPIDocuments embed.FS

// gvkExtension is the OpenAPI extension naming the kinds a schema describes.
const gvkExtension = "x-kubernetes-group-version-kind"

// refPrefix starts every reference inside an OpenAPI v3 document.
const refPrefix = "#/components/schemas/"

// Builtin resolves the schemas of the kinds kube-apiserver serves itself, from
// the embedded snapshot. It is safe for concurrent use.
type Builtin struct {
	mu      sync.Mutex
	schemas map[schema.GroupVersionKind]*spec.Schema
}

var _ resolver.SchemaResolver = (*Builtin)(nil)

// ResolveSchema returns the schema of gvk with every reference resolved, or an
// error wrapping resolver.ErrSchemaNotFound when gvk is not built in.
func (b *Builtin) ResolveSchema(gvk schema.GroupVersionKind) (*spec.Schema, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.schemas[gvk]; ok {
		return s, nil
	}
	s, err := resolveBuiltin(gvk)
	if err != nil {
		return nil, err
	}
	if b.schemas == nil {
		b.schemas = map[schema.GroupVersionKind]*spec.Schema{}
	}
	b.schemas[gvk] = s
	return s, nil
}

func resolveBuiltin(gvk schema.GroupVersionKind) (*spec.Schema, error) {
	components, err := readDocument(gvk.GroupVersion())
	if err != nil {
		return nil, err
	}
	for name, s := range components {
		var gvks []schema.GroupVersionKind
		if err := s.Extensions.GetObject(gvkExtension, &gvks); err != nil {
			return nil, fmt.Errorf("reading %s of %s: %w", gvkExtension, name, err)
		}
		for _, candidate := range gvks {
			if candidate == gvk {
				return resolver.PopulateRefs(func(ref string) (*spec.Schema, bool) {
					s, ok := components[strings.TrimPrefix(ref, refPrefix)]
					return s, ok
				}, refPrefix+name)
			}
		}
	}
	return nil, fmt.Errorf("kind %s is not built into Kubernetes: %w", gvk, resolver.ErrSchemaNotFound)
}

// readDocument returns the schemas of the embedded document of gv.
func readDocument(gv schema.GroupVersion) (map[string]*spec.Schema, error) {
	path := "apis/" + gv.Group + "/" + gv.Version
	if gv.Group == "" {
		path = "api/" + gv.Version
	}
	f, err := openAPIDocuments.Open("openapi/" + strings.ReplaceAll(path, "/", "_") + ".json.gz")
	if err != nil {
		return nil, fmt.Errorf("group version %s is not built into Kubernetes: %w", gv, resolver.ErrSchemaNotFound)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Components struct {
			Schemas map[string]*spec.Schema `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("reading the OpenAPI document of %s: %w", gv, err)
	}
	return doc.Components.Schemas, nil
}
