package policies

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apiserver/pkg/cel/environment"
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
		for _, p := range patchWrites(patchOp{op: tt.op, path: tt.path, from: tt.from}) {
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
	path := func(s string) objectPath { return strings.Split(s, ".") }
	reads := &objectReads{reads: []objectRead{
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
		if got := reads.touchedBy(path(tt.write)); got != tt.want {
			t.Errorf("a change at %s touches the reads: %v, want %v", tt.write, got, tt.want)
		}
	}
	if !(&objectReads{all: true}).touchedBy(path("anything")) {
		t.Error("reads that cannot be told must be touched by any change")
	}
	if !(*objectReads)(nil).touchedBy(path("anything")) {
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
	env, err := NewEngine(OfflineConfig(nil)).envSet.Env(environment.StoredExpressions)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &readAnalysis{env: env, variables: tt.variables, values: map[string][]objectPath{}}
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

// reinvocationPolicies are user policies that run after the built-in ones
// and change what those read, so that the built-ins must run again: a
// sidecar put first moves the Doris container, a removed liveness probe must
// come back, and an annotation added by ApplyConfiguration is among what the
// port lookups read.
const reinvocationPolicies = `
apiVersion: policies.doris-admission.io/v1alpha1
kind: MutatingPolicy
metadata: {name: sidecar-first}
spec:
  reinvocationPolicy: IfNeeded
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [statefulsets]}]
  matchConditions:
    - name: no-sidecar
      expression: "!object.spec.template.spec.containers.exists(c, c.name == 'log')"
  mutations:
    - patchType: JSONPatch
      jsonPatch:
        expression: "[JSONPatch{op: 'add', path: '/spec/template/spec/containers/0', value: {'name': 'log', 'image': 'fluent/fluent-bit:3'}}]"
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: MutatingPolicy
metadata: {name: strip-liveness}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [statefulsets]}]
  variables:
    - name: i
      expression: object.spec.template.spec.containers.size() - 1
  mutations:
    - patchType: JSONPatch
      jsonPatch:
        expression: >
          has(object.spec.template.spec.containers[variables.i].livenessProbe)
            ? [JSONPatch{op: 'remove', path: '/spec/template/spec/containers/' + string(variables.i) + '/livenessProbe'}] : []
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: MutatingPolicy
metadata: {name: team-annotation}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [statefulsets]}]
  mutations:
    - patchType: ApplyConfiguration
      applyConfiguration:
        expression: "Object{metadata: Object.metadata{annotations: {'team': 'data'}}}"
`

// TestReinvocationFollowsReads applies the built-in policies, alone and with
// user policies that change what they read, to every StatefulSet of the
// examples and the built-in test suite: the result must be what reinvoking
// after any change gives. A plain Doris StatefulSet then evaluates only
// doris-agent twice (doris-conf adds to the volumes and init containers it
// reads); the others read nothing a later policy changes.
func TestReinvocationFollowsReads(t *testing.T) {
	objects := readFixtures(t, "../deploy/examples/*.yaml", "builtin/tests/resources/*.yaml")
	builtin, err := Builtin(DefaultNamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string][]Policy{
		"built-in":          builtin,
		"built-in and user": append(slices.Clip(builtin), policiesOf(t, reinvocationPolicies)...),
	}
	statefulSets := 0
	for name, policies := range sets {
		engines := [2]*Engine{NewEngine(OfflineConfig(objects)), NewEngine(OfflineConfig(objects))}
		engines[1].reinvokeOnAnyChange = true
		for _, e := range engines {
			e.Load(policies)
		}
		for _, doc := range objects {
			if doc.Object.GetKind() != "StatefulSet" {
				continue
			}
			statefulSets++
			results := [2]*MutateResult{}
			for i, e := range engines {
				req, err := e.RequestForObject(doc.Object)
				if err != nil {
					t.Fatal(err)
				}
				if results[i], err = e.Mutate(context.Background(), req); err != nil {
					t.Fatalf("%s on %s: %v", name, doc.Object.GetName(), err)
				}
			}
			if diff := cmp.Diff(results[1], results[0]); diff != "" {
				t.Errorf("%s on %s: reinvoking on reads differs from reinvoking on any change (-any +reads):\n%s", name, doc.Object.GetName(), diff)
			}
		}
	}
	if statefulSets < 10 {
		t.Fatalf("only %d StatefulSets were tried", statefulSets)
	}
}

// TestReinvocationComesBackForWhatItReads shows both sides on the seed FE:
// with the built-in policies alone only doris-agent runs twice; after a user
// policy removes the liveness probe, doris-probes runs again and puts it back.
func TestReinvocationComesBackForWhatItReads(t *testing.T) {
	docs, err := ReadDocuments("../deploy/examples/seed-fe-plain.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	var fe Document
	for _, doc := range docs {
		if doc.Object.GetKind() == "StatefulSet" {
			fe = doc
		}
	}
	builtin, err := Builtin(DefaultNamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	evaluations := func(policies []Policy) (map[string]uint64, *MutateResult) {
		e := NewEngine(OfflineConfig(docs))
		loaded := e.Load(policies)
		before := map[string]uint64{}
		for _, l := range loaded {
			before[l.Name()] = evaluationCount(t, l.Name(), l.Kind())
		}
		req, err := e.RequestForObject(fe.Object)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Mutate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]uint64{}
		for _, l := range loaded {
			if n := evaluationCount(t, l.Name(), l.Kind()) - before[l.Name()]; n > 0 {
				counts[l.Name()] = n
			}
		}
		return counts, res
	}
	counts, _ := evaluations(builtin)
	// doris-conf and doris-env look at the volume mounts (a conf the user
	// mounts), which doris-fe-start adds to after them.
	want := map[string]uint64{"doris-agent": 2, "doris-conf": 2, "doris-env": 2, "doris-fe-start": 1, "doris-grace-period": 1, "doris-hooks": 1, "doris-probes": 1}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("evaluations of the built-in policies on the seed FE (-want +got):\n%s", diff)
	}
	counts, res := evaluations(append(slices.Clip(builtin), policiesOf(t, reinvocationPolicies)[1]))
	if counts["doris-probes"] != 2 {
		t.Errorf("doris-probes ran %d times after strip-liveness removed its probe, want 2", counts["doris-probes"])
	}
	containers, _, _ := unstructured.NestedSlice(res.Object.Object, "spec", "template", "spec", "containers")
	if _, ok := containers[len(containers)-1].(map[string]any)["livenessProbe"]; !ok {
		t.Error("the liveness probe strip-liveness removed is not back")
	}
}

// evaluationCount reads how many times the policy was evaluated, from the
// evaluation time histogram.
func evaluationCount(t *testing.T, name, kind string) uint64 {
	t.Helper()
	var m dto.Metric
	if err := evaluationSeconds.WithLabelValues(name, kind).(interface{ Write(*dto.Metric) error }).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}
