package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/cel/environment"

	"github.com/doris-admission/doris-admission/policies/compile"
	"github.com/doris-admission/doris-admission/policies/internal/fixtures"
	"github.com/doris-admission/doris-admission/policies/source"
)

// failingPolicies are a mutating and a validating policy whose expressions
// fail at run time on the deployment (the label is not there).
func failingPolicies(failure string) string {
	return `
apiVersion: policies.doris-admission.io/v1alpha1
kind: MutatingPolicy
metadata: {name: failing-mutation}
spec:
  failurePolicy: ` + failure + `
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  mutations:
    - patchType: JSONPatch
      jsonPatch:
        expression: "[JSONPatch{op: 'add', path: '/metadata/labels', value: {'team': object.metadata.labels['team']}}]"
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: failing-validation}
spec:
  failurePolicy: ` + failure + `
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  validations:
    - expression: "object.metadata.labels['team'] != ''"
`
}

// A failure that failurePolicy Ignore lets through is one thing in both
// phases: a warning that names the policy, where it failed and that it was
// ignored; the request goes on unchanged and undenied.
func TestIgnoredFailureIsAWarningInBothPhases(t *testing.T) {
	e, loaded := load(t, failingPolicies("Ignore"))
	for _, l := range loaded {
		if len(l.Problems) > 0 {
			t.Fatalf("%s: %v", l.Name(), l.Problems)
		}
	}
	req := request(t, object(t, deployment))
	mutated, err := e.Mutate(context.Background(), req)
	if err != nil || mutated.Object != nil || len(mutated.Warnings) != 1 {
		t.Fatalf("Mutate: %+v %v, want no change and one warning", mutated, err)
	}
	validated, err := e.Validate(context.Background(), req)
	if err != nil || len(validated.Denied) != 0 || len(validated.Warned) != 1 {
		t.Fatalf("Validate: %+v %v, want no denial and one warning", validated, err)
	}
	for policy, warning := range map[string]string{"failing-mutation": mutated.Warnings[0], "failing-validation": validated.Warned[0].String()} {
		for _, want := range []string{"could not be evaluated at spec.", "(expression \"", "; ignored (failurePolicy: Ignore) (policy " + policy + ")"} {
			if !strings.Contains(warning, want) {
				t.Errorf("%s's warning %q does not say %q", policy, warning, want)
			}
		}
	}
}

// A policy whose CEL environment does not build is a load problem, and each
// evaluation of it fails per its failurePolicy (never a crash).
func TestBrokenEnvironmentFailsPerFailurePolicy(t *testing.T) {
	for _, failure := range []string{"Fail", "Ignore"} {
		t.Run(failure, func(t *testing.T) {
			e := NewEngine(source.Offline(nil))
			broken, err := e.envSet.Extend(environment.VersionedOptions{IntroducedVersion: compile.CompatibilityVersion, EnvOptions: []cel.EnvOption{cel.Variable("variables", cel.IntType)}})
			if err != nil {
				t.Fatal(err)
			}
			e.envSet = broken // the variables library cannot be added to it
			for _, l := range e.Load(fixtures.Policies(t, failingPolicies(failure))) {
				if len(l.Problems) == 0 || !strings.Contains(l.Problems[0].Message, "building the CEL environment") {
					t.Errorf("%s: problems %v, want the environment's", l.Name(), l.Problems)
				}
			}
			req := request(t, object(t, deployment))
			mutated, mutateErr := e.Mutate(context.Background(), req)
			validated, validateErr := e.Validate(context.Background(), req)
			if validateErr != nil {
				t.Fatal(validateErr)
			}
			var perr *PolicyError
			if failure == "Fail" {
				if !errors.As(mutateErr, &perr) || perr.Policy != "failing-mutation" || !strings.Contains(perr.Error(), "building the CEL environment") {
					t.Errorf("Mutate: %v, want the policy's error", mutateErr)
				}
				if len(validated.Denied) != 1 || !strings.Contains(validated.Denied[0].Message, "building the CEL environment") {
					t.Errorf("Validate: %+v, want a denial with the environment's error", validated)
				}
				return
			}
			if mutateErr != nil || len(mutated.Warnings) != 1 || len(validated.Denied) != 0 || len(validated.Warned) != 1 {
				t.Errorf("Mutate: %+v %v; Validate: %+v; want one warning each", mutated, mutateErr, validated)
			}
		})
	}
}

// unreadable is a cluster whose objects of one kind cannot be read, as an
// informer cache that never filled.
type unreadable struct {
	source.Objects
	kind schema.GroupVersionKind
	err  error
}

func (u unreadable) List(ctx context.Context, kind schema.GroupVersionKind, namespace string, selector labels.Selector) ([]*unstructured.Unstructured, error) {
	if kind == u.kind {
		return nil, u.err
	}
	return u.Objects.List(ctx, kind, namespace, selector)
}

// A CEL function that cannot read the cluster fails its expression with a
// message that names the function and what it read, and the request fails
// per the policy's failurePolicy; it never reads as "nothing found".
func TestClusterLookupFailureFailsTheRequest(t *testing.T) {
	cfg := source.Offline(nil)
	cfg.Objects = unreadable{kind: schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, err: errors.New("the server's cache of StatefulSet objects is not filled yet")}
	e := builtinEngineOn(t, cfg)
	res, err := e.Mutate(context.Background(), seedRequest(t, e, "seed-be-plain.yaml"))
	var perr *PolicyError
	want := "dorisFEService could not read the cluster: reading the StatefulSet objects of namespace default: the server's cache of StatefulSet objects is not filled yet"
	if !errors.As(err, &perr) || perr.Policy != "doris-env" || !strings.Contains(err.Error(), want) {
		t.Errorf("mutating the seed's BE: %+v %v, want doris-env to fail with %q", res, err, want)
	}
}

func (u unreadable) Sync(ctx context.Context, kind schema.GroupVersionKind) error {
	if kind == u.kind {
		return u.err
	}
	return nil
}

// A paramKind the server cannot read is a load problem of its policy, and
// the requests it matches fail at once per its failurePolicy.
func TestUnreadableParamKindIsALoadProblem(t *testing.T) {
	cfg := source.Offline(nil)
	cfg.Objects = unreadable{kind: schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, err: errors.New(`configmaps is forbidden: User "system:serviceaccount:doris-admission:doris-admission" cannot list resource "configmaps"`)}
	e := NewEngine(cfg)
	loaded := e.Load(fixtures.Policies(t, `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: limited}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  paramRef: {name: default, parameterNotFoundAction: Deny}
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  validations:
    - expression: "object.spec.replicas <= int(params.data.max)"
`))
	e.CheckParams(context.Background(), loaded)
	if len(loaded[0].Problems) != 1 || loaded[0].Problems[0].Field != "spec.paramKind" || !strings.Contains(loaded[0].Problems[0].Message, "the server cannot read ConfigMap objects") || !strings.Contains(loaded[0].Problems[0].Message, "is forbidden") {
		t.Errorf("problems %+v, want one at spec.paramKind with the API server's answer", loaded[0].Problems)
	}
	res, err := e.Validate(context.Background(), request(t, object(t, deployment)))
	if err != nil || len(res.Denied) != 1 || !strings.Contains(res.Denied[0].Message, "is forbidden") {
		t.Errorf("Validate: %+v %v, want a denial that says the params cannot be read", res, err)
	}
}

// The kinds requests are counted under are the loaded policies' and the
// policy kinds; anything else is "other".
func TestKindOfIsAFixedSet(t *testing.T) {
	e := builtinEngine(t)
	for _, tt := range []struct {
		resource    schema.GroupVersionResource
		subResource string
		want        string
	}{
		{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}, "", "StatefulSet"},
		{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}, "scale", "StatefulSet/scale"},
		{schema.GroupVersionResource{Version: "v1", Resource: "services"}, "", "Service"},
		{schema.GroupVersionResource{Group: "policies.doris-admission.io", Version: "v1alpha1", Resource: "validatingpolicies"}, "", "ValidatingPolicy"},
		{schema.GroupVersionResource{Version: "v1", Resource: "made-up-1"}, "", "other"},
	} {
		if got := e.KindOf(tt.resource, tt.subResource); got != tt.want {
			t.Errorf("KindOf(%v, %q) = %q, want %q", tt.resource, tt.subResource, got, tt.want)
		}
	}
}
