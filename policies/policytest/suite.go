// Package policytest runs policy test suites: policies, the resources to run
// them on, and the outcome expected for each resource, all offline, on the
// same engine the webhook uses.
package policytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
)

// APIVersion and Kind of a test suite document.
const (
	APIVersion = "cli.doris-admission.io/v1alpha1"
	Kind       = "PolicyTest"
)

// Suite is one test suite file. Paths in it are relative to the file.
type Suite struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	// Policies are files or folders of MutatingPolicy and ValidatingPolicy.
	Policies []string `json:"policies,omitempty"`
	// Builtin names built-in policies to load too; "*" loads them all.
	Builtin []string `json:"builtin,omitempty"`
	// Resources are the files with the objects the cases name.
	Resources []string `json:"resources"`
	// Cluster are files with the objects the cluster holds: policy
	// parameters, Namespaces, Services whose node ports are taken.
	Cluster []string `json:"cluster,omitempty"`
	// NamespaceLabels are the labels of every namespace the resources are in
	// that Cluster does not define.
	NamespaceLabels map[string]string `json:"namespaceLabels,omitempty"`
	Cases           []Case            `json:"cases"`

	// file is where the suite was read from.
	file string
}

// Metadata names the suite.
type Metadata struct {
	Name string `json:"name"`
}

// Case is one resource and what the policies must make of it.
type Case struct {
	Name string `json:"name"`
	// Resource is Kind/namespace/name, or Kind/name, of one of the resources.
	Resource string `json:"resource"`
	// OldResource, a file, makes the request an UPDATE from that object.
	OldResource string `json:"oldResource,omitempty"`
	Expect      Expect `json:"expect"`
}

// Expect is the outcome of a case. Only what is given is checked.
type Expect struct {
	// Allowed: whether the request is admitted. Required.
	Allowed *bool `json:"allowed"`
	// Messages must each be part of a denial message.
	Messages []string `json:"messages,omitempty"`
	// Warnings must each be part of a warning; an empty list means none.
	Warnings *[]string `json:"warnings,omitempty"`
	// Mutated is a file with the object as the mutating policies must leave it.
	Mutated string `json:"mutated,omitempty"`
	// Patch is a JSON patch that must turn the resource into the mutated object.
	Patch []map[string]any `json:"patch,omitempty"`
	// Unchanged says no mutating policy may change the resource.
	Unchanged bool `json:"unchanged,omitempty"`
	// Generated is a file with the objects the generating policies must
	// create beside the resource, those the suite's resources and cluster do
	// not hold already; a file with no object says nothing is created.
	Generated string `json:"generated,omitempty"`
}

// Name is the suite's name, or its file's when it has none.
func (s *Suite) Name() string {
	if s.Metadata.Name != "" {
		return s.Metadata.Name
	}
	return s.file
}

// File is where the suite was read from.
func (s *Suite) File() string { return s.file }

// ResourceFiles are the suite's resources and cluster files, as paths.
func (s *Suite) ResourceFiles() []string {
	var out []string
	for _, f := range append(slices.Clone(s.Resources), s.Cluster...) {
		out = append(out, s.path(f))
	}
	return out
}

// path resolves a path of the suite relative to its file.
func (s *Suite) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(s.file), p)
}

// Find reads every suite under path: a suite file, or a folder searched
// recursively for YAML files whose kind is PolicyTest. Other documents are
// left alone: a suite's folder usually holds its resources too.
func Find(path string) ([]*Suite, error) {
	var files []string
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	var suites []*Suite
	var errs []error
	for _, file := range files {
		found, err := readSuites(file)
		errs = append(errs, err)
		suites = append(suites, found...)
	}
	err = errors.Join(errs...)
	if len(suites) == 0 && err == nil {
		err = fmt.Errorf("%s: no test suite found: a suite is a YAML document with apiVersion %s and kind %s", path, APIVersion, Kind)
	}
	return suites, err
}

// readSuites decodes the PolicyTest documents of one file, strictly. A file
// that does not mention the kind is left alone, readable or not: suites sit
// among resources, some broken on purpose.
func readSuites(file string) ([]*Suite, error) {
	if data, err := os.ReadFile(file); err != nil || !bytes.Contains(data, []byte(Kind)) {
		return nil, err
	}
	docs, err := policies.ReadDocuments(file, nil)
	errs := []error{err}
	var suites []*Suite
	for _, doc := range docs {
		if doc.Object.GetKind() != Kind {
			continue
		}
		s := &Suite{file: file}
		data, err := json.Marshal(doc.Object.Object)
		if err == nil {
			err = yaml.UnmarshalStrict(data, s)
		}
		if err == nil {
			err = s.check()
		}
		if err != nil {
			errs = append(errs, &policies.DocumentError{Origin: file, Index: doc.Index, Err: err})
			continue
		}
		suites = append(suites, s)
	}
	return suites, errors.Join(errs...)
}

// check reports what makes a suite impossible to run.
func (s *Suite) check() error {
	var errs []error
	if s.APIVersion != APIVersion {
		errs = append(errs, fmt.Errorf("apiVersion is %q; want %s", s.APIVersion, APIVersion))
	}
	if len(s.Policies) == 0 && len(s.Builtin) == 0 {
		errs = append(errs, errors.New("no policies: list policy files under policies, or built-in policies under builtin"))
	}
	if len(s.Cases) == 0 {
		errs = append(errs, errors.New("no cases: list what each resource must come out as under cases"))
	}
	for i, c := range s.Cases {
		field := fmt.Sprintf("cases[%d]", i)
		if c.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name is missing", field))
		}
		if strings.Count(c.Resource, "/") < 1 {
			errs = append(errs, fmt.Errorf("%s.resource %q: write Kind/namespace/name or Kind/name", field, c.Resource))
		}
		if c.Expect.Allowed == nil {
			errs = append(errs, fmt.Errorf("%s.expect.allowed is missing: say whether the request is admitted", field))
		}
		if n := countTrue(c.Expect.Mutated != "", c.Expect.Patch != nil, c.Expect.Unchanged); n > 1 {
			errs = append(errs, fmt.Errorf("%s.expect: give one of mutated, patch and unchanged", field))
		}
	}
	return errors.Join(errs...)
}

func countTrue(values ...bool) int {
	n := 0
	for _, v := range values {
		if v {
			n++
		}
	}
	return n
}

// load reads the suite's policies and the documents of its resources and cluster.
func (s *Suite) load() (loaded []policies.Policy, resources, cluster []policies.Document, err error) {
	var errs []error
	if len(s.Builtin) > 0 {
		builtin, err := selectBuiltin(s.Builtin)
		errs = append(errs, err)
		loaded = append(loaded, builtin...)
	}
	for _, p := range s.Policies {
		files, err := policies.ReadPolicies(s.path(p), nil)
		errs = append(errs, err)
		loaded = append(loaded, files...)
	}
	for _, r := range s.Resources {
		docs, err := policies.ReadDocuments(s.path(r), nil)
		errs = append(errs, err)
		resources = append(resources, docs...)
	}
	for _, c := range s.Cluster {
		docs, err := policies.ReadDocuments(s.path(c), nil)
		errs = append(errs, err)
		cluster = append(cluster, docs...)
	}
	return loaded, resources, cluster, errors.Join(errs...)
}

// selectBuiltin returns the built-in policies named, all of them for "*".
func selectBuiltin(names []string) ([]policies.Policy, error) {
	all, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil || slices.Contains(names, "*") {
		return all, err
	}
	var disabled []string
	for _, p := range all {
		if !slices.Contains(names, p.Name()) {
			disabled = append(disabled, p.Name())
		}
	}
	selected, err := builtin.Builtin(builtin.DefaultNamespace, disabled)
	for _, name := range names {
		if !slices.ContainsFunc(selected, func(p policies.Policy) bool { return p.Name() == name }) {
			err = errors.Join(err, fmt.Errorf("builtin: there is no built-in policy %q (doris-admission policy list names them)", name))
		}
	}
	return selected, err
}
