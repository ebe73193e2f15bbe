package engine

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/internal/fixtures"
	"github.com/doris-admission/doris-admission/policies/source"
)

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
	objects := fixtures.Read(t, "../../deploy/examples/*.yaml", "../builtin/tests/resources/*.yaml")
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string][]policies.Policy{
		"built-in":          builtins,
		"built-in and user": append(slices.Clip(builtins), fixtures.Policies(t, reinvocationPolicies)...),
	}
	statefulSets := 0
	for name, policies := range sets {
		engines := [2]*Engine{NewEngine(source.Offline(objects)), NewEngine(source.Offline(objects))}
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
	docs, err := policies.ReadDocuments("../../deploy/examples/seed-fe-plain.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	var fe policies.Document
	for _, doc := range docs {
		if doc.Object.GetKind() == "StatefulSet" {
			fe = doc
		}
	}
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	evaluations := func(policies []policies.Policy) (map[string]uint64, *MutateResult) {
		e := NewEngine(source.Offline(docs))
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
	counts, _ := evaluations(builtins)
	// doris-conf and doris-env look at the volume mounts (a conf the user
	// mounts), which doris-fe-start adds to after them.
	want := map[string]uint64{"doris-agent": 2, "doris-conf": 2, "doris-env": 2, "doris-fe-start": 1, "doris-grace-period": 1, "doris-hooks": 1, "doris-probes": 1}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("evaluations of the built-in policies on the seed FE (-want +got):\n%s", diff)
	}
	counts, res := evaluations(append(slices.Clip(builtins), fixtures.Policies(t, reinvocationPolicies)[1]))
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
