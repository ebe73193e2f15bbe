package playground

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/policytest"
)

// suiteFile is the PolicyTest document of a saved case.
const suiteFile = "playground.test.yaml"

// safeName is what a saved suite's folder name may hold.
var safeName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Save writes the case, with the outcome res as what it must give, as a
// policy test suite in dir/name: the policies, the resource, the old object
// and the cluster's objects as files, and playground.test.yaml, which
// `doris-admission policy test dir/name` runs. It returns the suite's folder.
func Save(dir, name string, c Case, res *Result) (string, error) {
	if !safeName.MatchString(name) {
		return "", fmt.Errorf("suite name %q: use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit", name)
	}
	if strings.EqualFold(c.Operation, "DELETE") {
		return "", errors.New("a DELETE cannot be saved as a policy test: policy test runs CREATE and UPDATE requests")
	}
	object, err := policies.DecodeObject([]byte(c.Object))
	if err != nil {
		return "", fmt.Errorf("the resource: %w", err)
	}
	folder := filepath.Join(dir, name)
	if err := os.MkdirAll(folder, 0o755); err != nil {
		return "", err
	}
	suite := policytest.Suite{
		APIVersion: policytest.APIVersion, Kind: policytest.Kind,
		Metadata:  policytest.Metadata{Name: name},
		Resources: []string{"resource.yaml"}, NamespaceLabels: c.NamespaceLabels,
	}
	files := map[string]string{"resource.yaml": c.Object}
	if c.Builtins {
		suite.Builtin = []string{"*"}
	}
	if strings.TrimSpace(c.Policies) != "" {
		suite.Policies, files["policies.yaml"] = []string{"policies.yaml"}, c.Policies
	}
	if strings.TrimSpace(c.Params) != "" {
		suite.Cluster, files["cluster.yaml"] = []string{"cluster.yaml"}, c.Params
	}
	test := policytest.Case{Name: "as the playground evaluated it", Resource: resourceRef(object.GetKind(), object.GetNamespace(), object.GetName())}
	if strings.EqualFold(c.Operation, "UPDATE") {
		test.OldResource, files["old.yaml"] = "old.yaml", c.OldObject
	}
	test.Expect = expectation(res)
	if res.Mutated != "" {
		test.Expect.Mutated, files["mutated.yaml"] = "mutated.yaml", res.Mutated
	}
	suite.Cases = []policytest.Case{test}
	data, err := yaml.Marshal(suite)
	if err != nil {
		return "", err
	}
	files[suiteFile] = "# Saved from the doris-admission playground. Run: doris-admission policy test " + folder + "\n" + string(data)
	for file, content := range files {
		if err := os.WriteFile(filepath.Join(folder, file), []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	return folder, nil
}

// expectation is the outcome res as a case's expectation: allowed or not,
// every denial and warning, unchanged when no policy changed the object.
func expectation(res *Result) policytest.Expect {
	allowed := res.Allowed
	warnings := append([]string{}, res.Warnings...)
	return policytest.Expect{
		Allowed: &allowed, Messages: res.Denials, Warnings: &warnings,
		Unchanged: res.Mutated == "",
	}
}

// resourceRef is how a case names its resource: Kind/namespace/name, or
// Kind/name without a namespace.
func resourceRef(kind, namespace, name string) string {
	if namespace == "" {
		return kind + "/" + name
	}
	return kind + "/" + namespace + "/" + name
}
