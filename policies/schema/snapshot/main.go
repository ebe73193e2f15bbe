// Command snapshot captures the OpenAPI v3 documents of every built-in API
// group version from a real kube-apiserver (the one test/controlplane builds)
// into policies/schema/openapi, so policies are type-checked offline against
// the same schemas the API server uses.
//
// Run it with `make schemas` after a Kubernetes version bump.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func main() {
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "snapshot:", err)
		os.Exit(1)
	}
}

func run(outDir string) error {
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("starting the control plane (is KUBEBUILDER_ASSETS set?): %w", err)
	}
	defer env.Stop()
	client, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	paths, err := client.OpenAPIV3().Paths()
	if err != nil {
		return fmt.Errorf("listing OpenAPI v3 paths: %w", err)
	}
	if err := writeResources(client, filepath.Join(outDir, resourcesFile)); err != nil {
		return err
	}
	for path, gv := range paths {
		if !isGroupVersion(path) {
			continue
		}
		doc, err := gv.Schema("application/json")
		if err != nil {
			return fmt.Errorf("fetching %s: %w", path, err)
		}
		if err := write(filepath.Join(outDir, fileName(path)), doc); err != nil {
			return err
		}
	}
	return nil
}

// resourcesFile lists the built-in resources; it must match builtin.go.
const resourcesFile = "resources.json"

// writeResources stores every built-in resource (not subresource) with its
// kind and scope, from the API server's discovery.
func writeResources(client *discovery.DiscoveryClient, file string) error {
	_, all, err := client.ServerGroupsAndResources()
	if err != nil {
		return fmt.Errorf("discovering resources: %w", err)
	}
	var resources []resource
	for _, list := range all {
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") {
				continue
			}
			resources = append(resources, resource{GroupVersion: list.GroupVersion, Resource: r.Name, Kind: r.Kind, Namespaced: r.Namespaced})
		}
	}
	data, err := json.MarshalIndent(resources, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(data, '\n'), 0o644)
}

// resource is one entry of resources.json.
type resource struct {
	GroupVersion string `json:"groupVersion"`
	Resource     string `json:"resource"`
	Kind         string `json:"kind"`
	Namespaced   bool   `json:"namespaced"`
}

// isGroupVersion tells api/v1 and apis/<group>/<version> from the group
// listings and non-resource paths.
func isGroupVersion(path string) bool {
	parts := strings.Split(path, "/")
	return (parts[0] == "api" && len(parts) == 2) || (parts[0] == "apis" && len(parts) == 3)
}

// fileName maps an OpenAPI path such as apis/apps/v1 to apis_apps_v1.json.gz.
func fileName(path string) string {
	return strings.ReplaceAll(path, "/", "_") + ".json.gz"
}

// write stores doc compacted and gzipped.
func write(file string, doc []byte) error {
	var compact bytes.Buffer
	if err := json.Compact(&compact, doc); err != nil {
		return err
	}
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(compact.Bytes()); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(file, out.Bytes(), 0o644)
}
