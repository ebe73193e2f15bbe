package policies_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// module is the product's import path; the harness modules (test, bench)
// live under it.
const module = "github.com/doris-admission/doris-admission/"

// layers are the engine's packages, bottom up, as docs/architecture.md draws
// them: a package imports only packages of the layers below its own.
var layers = [][]string{
	{"policies/api/v1alpha1", "policies/inventory", "policies/schema", "policies/jsonpatch"},
	{"policies", "policies/library"},
	{"policies/builtin", "policies/source", "policies/internal/fixtures"},
	{"policies/compile"},
	{"policies/engine"},
	{"policies/cluster", "policies/export", "policies/policytest"},
	{"policies/lint"},
}

// internals are the engine's own: the server, the commands, the audit, the
// generate controller and the harnesses reach them only through the runtime
// (policies/engine) and the sources.
var internals = []string{"policies/compile", "policies/internal/fixtures"}

// listed is a package as go list describes it.
type listed struct {
	ImportPath, Name                   string
	Imports, TestImports, XTestImports []string
}

// TestPackagesKeepTheirLayers fails when an import breaks the layering: a
// package of the engine importing one of its own layer or above, a package
// under policies/ that is in no layer, or a package outside the engine
// importing its internals.
func TestPackagesKeepTheirLayers(t *testing.T) {
	layerOf := map[string]int{}
	for i, layer := range layers {
		for _, pkg := range layer {
			layerOf[pkg] = i
		}
	}
	var all []listed
	for _, dir := range []string{"..", "../test", "../bench"} {
		all = append(all, goList(t, dir)...)
	}
	if len(all) < 20 {
		t.Fatalf("go list found %d packages: the modules were not read", len(all))
	}
	for _, pkg := range all {
		path := strings.TrimPrefix(pkg.ImportPath, module)
		own, inLayer := layerOf[path]
		if !inLayer && strings.HasPrefix(path, "policies") && pkg.Name != "main" {
			t.Errorf("%s is in no layer: add it to layers here and to docs/architecture.md", path)
		}
		for _, imported := range slices.Concat(pkg.Imports, pkg.TestImports, pkg.XTestImports) {
			dep, ok := strings.CutPrefix(imported, module)
			if !ok || dep == path {
				continue
			}
			depLayer, depInLayer := layerOf[dep]
			switch {
			case inLayer && depInLayer && depLayer >= own:
				t.Errorf("%s (layer %d) imports %s (layer %d): a package imports only the layers below its own", path, own, dep, depLayer)
			case !inLayer && slices.Contains(internals, dep):
				t.Errorf("%s imports %s, an internal of the engine: go through policies/engine or the sources instead", path, dep)
			}
		}
	}
}

// goList lists the packages of the module in dir.
func goList(t *testing.T, dir string) []listed {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Name,Imports,TestImports,XTestImports", "./...")
	cmd.Dir = filepath.Clean(dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list in %s: %v\n%s", dir, err, stderr.String())
	}
	var pkgs []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs
		} else if err != nil {
			t.Fatalf("reading go list's output in %s: %v", dir, err)
		}
		pkgs = append(pkgs, p)
	}
}
