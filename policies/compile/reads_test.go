package compile

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apiserver/pkg/cel/environment"

	"github.com/doris-admission/doris-admission/policies/jsonpatch"
)

func TestPointerPath(t *testing.T) {
	tests := []struct {
		op, path, from string
		want           []string
	}{
		{"add", "/spec/template/spec/containers/0/env", "", []string{"spec/template/spec/containers/0/env"}},
		{"add", "/spec/template/spec/containers/0/env/-", "", []string{"spec/template/spec/containers/0/env"}},
		{"add", "/spec/template/spec/initContainers/0", "", []string{"spec/template/spec/initContainers"}},
		{"remove", "/spec/template/spec/volumes/3", "", []string{"spec/template/spec/volumes"}},
		{"replace", "/spec/template/spec/volumes/3", "", []string{"spec/template/spec/volumes/3"}},
		{"add", "/metadata/annotations/doris.apache.org~1inject", "", []string{"metadata/annotations/doris.apache.org\\inject"}},
		{"add", "/a/-/b", "", []string{"a"}},
		{"add", "/a/-1/b", "", []string{"a"}},
		{"replace", "", "", []string{""}},
		{"move", "/a/b", "/c/2", []string{"c", "a/b"}},
		{"test", "/a", "", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, p := range patchWrites(jsonpatch.Op{Op: tt.op, Path: tt.path, From: tt.from}) {
			for i := range p {
				p[i] = strings.ReplaceAll(p[i], "/", "\\")
			}
			got = append(got, strings.Join(p, "/"))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s %s from %q changes %q, want %q", tt.op, tt.path, tt.from, got, tt.want)
		}
	}
}

func TestTouchedBy(t *testing.T) {
	path := func(s string) ObjectPath { return strings.Split(s, ".") }
	reads := &ObjectReads{reads: []objectRead{
		{path: path("spec.template.spec.containers.*.env"), shallow: true},
		{path: path("spec.template.spec.containers.*.env.*.name")},
		{path: path("metadata.annotations.inject")},
	}}
	tests := []struct {
		write string
		want  bool
	}{
		{"spec.template.spec.containers.0.env", true},        // env added or appended to
		{"spec.template.spec.containers.1.env.0", true},      // an element replaced
		{"spec.template.spec.containers.1.env.0.name", true}, // a name changed
		{"spec.template.spec.containers.1.env.0.value", false},
		{"spec.template.spec.containers", true}, // the list changed
		{"spec.template.spec.containers.0.livenessProbe", false},
		{"spec.template.spec.volumes", false},
		{"metadata.annotations", true},
		{"metadata.annotations.other", false},
		{"metadata", true},
	}
	for _, tt := range tests {
		if got := reads.TouchedBy(path(tt.write)); got != tt.want {
			t.Errorf("a change at %s touches the reads: %v, want %v", tt.write, got, tt.want)
		}
	}
	if !(&ObjectReads{all: true}).TouchedBy(path("anything")) {
		t.Error("reads that cannot be told must be touched by any change")
	}
	if !(*ObjectReads)(nil).TouchedBy(path("anything")) {
		t.Error("the reads of a policy that did not compile must be touched by any change")
	}
}

// TestMutatingReads checks what the analysis makes of the shapes of
// expression the policies use: a path that is only passed along is not read,
// has() and comprehensions read what is there, the elements are read where
// they are used, and an object handed to a function that does not declare
// its reads is read whole.
func TestMutatingReads(t *testing.T) {
	tests := []struct {
		name       string
		variables  map[string]string
		expression string
		want       []string
	}{
		{"has", nil, "has(object.spec.paused)", []string{"shallow spec.paused"}},
		{"compare", nil, "object.spec.replicas > 3", []string{"spec.replicas"}},
		{"optional", nil, "object.metadata.?labels[?'team'].orValue('') == 'a'", []string{"metadata.labels.team"}},
		{"index", nil, "object.spec.template.spec.containers[0].image == 'x'", []string{"spec.template.spec.containers.0.image"}},
		{"computed index", nil, "object.spec.template.spec.containers[size(object.spec.template.spec.containers) - 1].name == 'x'",
			[]string{"shallow spec.template.spec.containers", "spec.template.spec.containers.*.name"}},
		{"comprehension", nil, "object.spec.template.spec.containers.exists(c, c.name == 'fe')",
			[]string{"shallow spec.template.spec.containers", "spec.template.spec.containers.*.name"}},
		{"variable passed along", map[string]string{"c": "object.spec.template.spec.containers[0]"}, "has(variables.c.lifecycle)",
			[]string{"shallow spec.template.spec.containers.0.lifecycle"}},
		{"unused variable", map[string]string{"c": "object.spec.template"}, "true", nil},
		{"declared function", nil, "dorisConfDir(object) != ''", []string{
			"metadata.annotations.doris.apache.org/conf-dir", "metadata.labels.doris.apache.org/role",
			"spec.template.metadata.labels.doris.apache.org/role", "spec.template.spec.containers.*.name", "spec.template.spec.containers.*.image"}},
		{"undeclared function", nil, "string(object) != ''", []string{""}},
		{"value in a patch", nil, "[JSONPatch{op: 'add', path: '/x', value: object.spec.selector}]", []string{"spec.selector"}},
		{"conditional", nil, "(object.spec.replicas > 1 ? object.spec.template : object.spec.selector).size() > 0",
			[]string{"spec.replicas", "shallow spec.template", "shallow spec.selector"}},
	}
	env, err := mustEnvSet(t).Env(environment.StoredExpressions)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &readAnalysis{env: env, variables: tt.variables, values: map[string][]ObjectPath{}}
			a.expression(tt.expression)
			if a.result.all {
				t.Fatal("the analysis gave up")
			}
			var got []string
			for _, r := range a.result.reads {
				text := strings.Join(r.path, ".")
				if r.shallow {
					text = "shallow " + text
				}
				got = append(got, text)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("reads of %s (-want +got):\n%s", tt.expression, diff)
			}
		})
	}
}

// mustEnvSet is the policies' CEL environment, without a cluster to read.
func mustEnvSet(t *testing.T) *environment.EnvSet {
	envSet, err := EnvSet(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return envSet
}
