package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/internal/fixtures"
	"github.com/doris-admission/doris-admission/policies/source"
)

// load decodes policy YAML and loads it into a fresh offline engine.
func load(t *testing.T, yamlText string) (*Engine, []Loaded) {
	t.Helper()
	e := NewEngine(source.Offline(nil))
	return e, e.Load(fixtures.Policies(t, yamlText))
}

// object decodes one manifest.
func object(t *testing.T, yamlText string) *unstructured.Unstructured {
	t.Helper()
	obj, err := policies.DecodeObject([]byte(yamlText))
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

func request(t *testing.T, obj *unstructured.Unstructured) *Request {
	t.Helper()
	req, err := NewEngine(source.Offline(nil)).RequestForObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

const deployment = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 7
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
`

const deploymentPolicies = `
apiVersion: policies.doris-admission.io/v1alpha1
kind: MutatingPolicy
metadata: {name: add-team-label}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}]
  mutations:
    - patchType: ApplyConfiguration
      applyConfiguration:
        expression: >
          Object{metadata: Object.metadata{labels: {"team": "shop"}}}
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: MutatingPolicy
metadata: {name: add-env}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  matchConditions:
    - name: no-env-yet
      expression: "!has(object.spec.template.spec.containers[0].env)"
  mutations:
    - patchType: JSONPatch
      jsonPatch:
        expression: >
          [JSONPatch{op: "add", path: "/spec/template/spec/containers/0/env", value: [
            {"name": dyn("POD_IP"), "valueFrom": dyn({"fieldRef": {"fieldPath": "status.podIP"}})}
          ]}]
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: max-replicas}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}]
  validations:
    - expression: object.spec.replicas <= 5
      messageExpression: "'replicas is ' + string(object.spec.replicas) + ', at most 5 are allowed'"
      fieldPath: spec.replicas
    - expression: object.metadata.name.size() >= 5
      message: name is shorter than 5 characters
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: want-team-label}
spec:
  validationActions: [Warn]
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  validations:
    - expression: "has(object.metadata.labels) && 'owner' in object.metadata.labels"
      message: set an owner label
      fieldPath: metadata.labels
`

func TestMutateAppliesPoliciesInOrder(t *testing.T) {
	e, loaded := load(t, deploymentPolicies)
	for _, l := range loaded {
		if len(l.Problems) > 0 {
			t.Fatalf("policy %s: %v", l.Name(), l.Problems)
		}
	}
	res, err := e.Mutate(context.Background(), request(t, object(t, deployment)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"add-env", "add-team-label"}, res.Applied); diff != "" {
		t.Errorf("applied policies (-want +got):\n%s", diff)
	}
	if got := res.Object.GetLabels()["team"]; got != "shop" {
		t.Errorf("label team = %q, want shop", got)
	}
	env, _, _ := unstructured.NestedSlice(res.Object.Object, "spec", "template", "spec", "containers")
	want := []any{map[string]any{"name": "POD_IP", "valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "status.podIP"}}}}
	if diff := cmp.Diff(want, env[0].(map[string]any)["env"]); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}

	// Idempotent: mutating the result again changes nothing.
	again, err := e.Mutate(context.Background(), request(t, res.Object))
	if err != nil {
		t.Fatal(err)
	}
	if again.Object != nil {
		t.Errorf("a second mutation changed the object again (policies %v)", again.Applied)
	}
}

func TestMutateLeavesOtherKindsAlone(t *testing.T) {
	e, _ := load(t, deploymentPolicies)
	res, err := e.Mutate(context.Background(), request(t, object(t, `{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}`)))
	if err != nil || res.Object != nil {
		t.Errorf("a ConfigMap was mutated: %v, %v", res, err)
	}
}

func TestValidateReportsEveryFailure(t *testing.T) {
	e, _ := load(t, deploymentPolicies)
	obj := object(t, deployment)
	obj.SetName("web")
	res, err := e.Validate(context.Background(), request(t, obj))
	if err != nil {
		t.Fatal(err)
	}
	var denied, warned []string
	for _, v := range res.Denied {
		denied = append(denied, v.String())
	}
	for _, v := range res.Warned {
		warned = append(warned, v.String())
	}
	wantDenied := []string{
		"spec.replicas: replicas is 7, at most 5 are allowed (policy max-replicas)",
		"name is shorter than 5 characters (policy max-replicas)",
	}
	if diff := cmp.Diff(wantDenied, denied); diff != "" {
		t.Errorf("denied (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"metadata.labels: set an owner label (policy want-team-label)"}, warned); diff != "" {
		t.Errorf("warned (-want +got):\n%s", diff)
	}
}

func TestLoadReportsBrokenExpressions(t *testing.T) {
	_, loaded := load(t, `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: broken}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [statefulsets]}]
  validations:
    - expression: object.spec.replica > 5
    - expression: "object.spec.replicas >"
    - expression: object.spec.replicas
`)
	problems := loaded[0].Problems
	if len(problems) != 3 {
		t.Fatalf("got %d problems, want 3: %v", len(problems), problems)
	}
	for i, want := range []string{"undefined field 'replica'", "Syntax error", "must evaluate to bool"} {
		if !strings.Contains(problems[i].Message, want) || problems[i].Field == "" {
			t.Errorf("problem %d = %v, want a message with %q", i, problems[i], want)
		}
	}
	if !strings.Contains(problems[1].Message, "1:23") {
		t.Errorf("the syntax error does not give the position: %v", problems[1])
	}
}

func TestRuntimeCostLimitFailsPerFailurePolicy(t *testing.T) {
	list := "[" + strings.Repeat("1,", 99) + "1]"
	expensive := list + ".all(a, " + list + ".all(b, " + list + ".all(c, a + b + c > 0)))"
	for _, failure := range []string{"Fail", "Ignore"} {
		t.Run(failure, func(t *testing.T) {
			e, _ := load(t, `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: expensive}
spec:
  failurePolicy: `+failure+`
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  validations:
    - expression: "`+expensive+`"
`)
			errorsBefore := testutil.ToFloat64(evaluationErrors.WithLabelValues("expensive", policies.KindValidating))
			res, err := e.Validate(context.Background(), request(t, object(t, deployment)))
			if err != nil {
				t.Fatal(err)
			}
			if got := testutil.ToFloat64(evaluationErrors.WithLabelValues("expensive", policies.KindValidating)) - errorsBefore; got != 1 {
				t.Errorf("doris_admission_policy_errors_total grew by %v, want 1", got)
			}
			if failure == "Ignore" {
				if len(res.Denied) != 0 {
					t.Errorf("failurePolicy Ignore denied: %v", res.Denied)
				}
				return
			}
			if len(res.Denied) != 1 || !strings.Contains(res.Denied[0].Message, "cost") || !strings.Contains(res.Denied[0].Message, "expression") {
				t.Errorf("want one denial about the cost limit naming the expression, got %v", res.Denied)
			}
		})
	}
}

func TestMutateFailurePolicy(t *testing.T) {
	broken := func(failure string) string {
		return `
apiVersion: policies.doris-admission.io/v1alpha1
kind: MutatingPolicy
metadata: {name: broken}
spec:
  failurePolicy: ` + failure + `
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  mutations:
    - patchType: JSONPatch
      jsonPatch:
        expression: '[JSONPatch{op: "replace", path: "/spec/nothere/x", value: 1}]'
`
	}
	e, _ := load(t, broken("Fail"))
	_, err := e.Mutate(context.Background(), request(t, object(t, deployment)))
	var perr *PolicyError
	if !errors.As(err, &perr) || perr.Policy != "broken" || perr.Field != "spec.mutations[0].jsonPatch.expression" {
		t.Errorf("failurePolicy Fail: got %v, want a PolicyError naming the policy and the mutation", err)
	}
	e, _ = load(t, broken("Ignore"))
	res, err := e.Mutate(context.Background(), request(t, object(t, deployment)))
	if err != nil || res.Object != nil || len(res.Warnings) != 1 {
		t.Errorf("failurePolicy Ignore: got %+v, %v; want no change and one warning", res, err)
	}
}

func TestParamsFromTheDocumentsAtHand(t *testing.T) {
	policy := `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: replica-limit}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  paramRef: {name: limits, parameterNotFoundAction: Deny}
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  validations:
    - expression: object.spec.replicas <= int(params.data.maxReplicas)
      messageExpression: "'at most ' + params.data.maxReplicas + ' replicas in ' + params.metadata.namespace"
`
	limits := policies.Document{Origin: "cm.yaml", Index: 1, Object: object(t, `{apiVersion: v1, kind: ConfigMap, metadata: {name: limits, namespace: shop}, data: {maxReplicas: "3"}}`)}
	docs, err := policies.DecodeStream("p.yaml", strings.NewReader(policy))
	if err != nil {
		t.Fatal(err)
	}
	p, err := policies.PolicyFromDocument(docs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		docs []policies.Document
		want string
	}{
		{"found in the object's namespace", []policies.Document{limits}, "at most 3 replicas in shop (policy replica-limit)"},
		{"missing", nil, "no ConfigMap parameters found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine(source.Offline(tt.docs))
			if loaded := e.Load([]policies.Policy{p}); len(loaded[0].Problems) > 0 {
				t.Fatal(loaded[0].Problems)
			}
			res, err := e.Validate(context.Background(), request(t, object(t, deployment)))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Denied) != 1 || !strings.Contains(res.Denied[0].String(), tt.want) {
				t.Errorf("denied %v, want one containing %q", res.Denied, tt.want)
			}
		})
	}
}

// TestNodePortInventory: a user policy reads the node port inventory, here
// built from the documents at hand.
func TestNodePortInventory(t *testing.T) {
	policy := `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: unique-node-ports}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [services]}]
  variables:
    - name: taken
      expression: >
        object.spec.?ports.orValue([]).filter(p, has(p.nodePort) &&
          inventory.nodePortOwners(p.nodePort).exists(o, o.namespace != request.namespace || o.name != request.name))
  validations:
    - expression: size(variables.taken) == 0
      fieldPath: spec.ports
      messageExpression: >
        variables.taken.map(p, 'nodePort ' + string(p.nodePort) + ' is already used by ' +
          inventory.nodePortOwners(p.nodePort).map(o, 'Service ' + o.namespace + '/' + o.name + ' (port "' + o.port + '")').join(', ')).join('; ')
`
	owner := policies.Document{Origin: "fe.yaml", Index: 1, Object: object(t, `{apiVersion: v1, kind: Service, metadata: {name: doris-fe, namespace: default}, spec: {type: NodePort, ports: [{name: http, port: 8030, nodePort: 32130}]}}`)}
	docs, _ := policies.DecodeStream("p.yaml", strings.NewReader(policy))
	p, err := policies.PolicyFromDocument(docs[0])
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(source.Offline(nil))
	if loaded := e.Load([]policies.Policy{p}); len(loaded[0].Problems) > 0 {
		t.Fatal(loaded[0].Problems)
	}
	e.Admitted(owner.Object, 0)
	for _, tt := range []struct{ name, manifest, want string }{
		{"collision", `{apiVersion: v1, kind: Service, metadata: {name: debug, namespace: ops}, spec: {type: NodePort, ports: [{port: 8040, nodePort: 32130}]}}`,
			`spec.ports: nodePort 32130 is already used by Service default/doris-fe (port "http") (policy unique-node-ports)`},
		{"itself", owner.Object.Object["metadata"].(map[string]any)["name"].(string), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			obj := owner.Object
			if tt.want != "" {
				obj = object(t, tt.manifest)
			}
			res, err := e.Validate(context.Background(), request(t, obj))
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if len(res.Denied) > 0 {
				got = res.Denied[0].String()
			}
			if got != tt.want {
				t.Errorf("denied %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRequestCostBudgetIsShared: each policy stays under the per-expression
// limit, but together they spend more than one request may; the policies
// past the budget fail per their failurePolicy, and the next request starts
// with a full budget.
func TestRequestCostBudgetIsShared(t *testing.T) {
	list := func(n int) string { return "[" + strings.Repeat("1,", n-1) + "1]" }
	// About half of the 1,000,000 an expression may cost.
	expression := list(100) + ".all(a, " + list(50) + ".all(b, " + list(10) + ".all(c, a + b + c > 0)))"
	var text strings.Builder
	const policies = 30
	for i := range policies {
		fmt.Fprintf(&text, `
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: spend-%02d}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  validations:
    - expression: "%s"
`, i, expression)
	}
	e, _ := load(t, text.String())
	for range 2 {
		res, err := e.Validate(context.Background(), request(t, object(t, deployment)))
		if err != nil {
			t.Fatal(err)
		}
		// Alone, each policy passes; together, the first ones pass and
		// every one after the budget ran out fails.
		if len(res.Denied) == 0 || len(res.Denied) == policies {
			t.Fatalf("want the policies past a budget of 10,000,000 denied, got %d denials of %d", len(res.Denied), policies)
		}
		for i, denial := range res.Denied {
			want := fmt.Sprintf("spend-%02d", policies-len(res.Denied)+i)
			if denial.Policy != want || !strings.Contains(denial.Message, "the request's CEL cost budget of 10,000,000 is spent") {
				t.Errorf("denial %d = %.200s..., want %s told the request's budget is spent", i, denial, want)
			}
		}
	}
}
