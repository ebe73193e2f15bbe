package export

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/api/v1alpha1"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/compile"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/internal/fixtures"
	dorislib "github.com/doris-admission/doris-admission/policies/library"
	"github.com/doris-admission/doris-admission/policies/source"
)

func pointer[T any](v T) *T { return &v }

var deploymentRules = &admissionregistrationv1.MatchResources{
	ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
		RuleWithOperations: admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
		},
	}},
}

const exportRules = `
  matchConstraints:
    resourceRules:
      - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}`

func TestExport(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		// want are the native objects; nil when the policy is not exported.
		want []runtime.Object
		// notExported are phrases the reason must hold.
		notExported []string
		// notInExplanation are names the reason must not hold.
		notInExplanation []string
		calls            []string
		lost             []string
	}{
		{
			name: "validating with params",
			policy: `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata:
  name: max-replicas
  labels: {team: platform}
  annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}", note: kept}
spec:
  validationActions: [Warn, Audit]
  paramKind: {apiVersion: v1, kind: ConfigMap}
  paramRef: {name: limits, namespace: policy-params}` + exportRules + `
  variables:
    - {name: limit, expression: "int(params.data.maxReplicas)"}
  validations:
    - expression: "object.spec.replicas <= variables.limit"
      messageExpression: "'asks for ' + string(object.spec.replicas) + ' replicas'"
      fieldPath: spec.replicas
      reason: Forbidden
`,
			want: []runtime.Object{
				&admissionregistrationv1.ValidatingAdmissionPolicy{
					TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
					ObjectMeta: metav1.ObjectMeta{Name: "max-replicas", Labels: map[string]string{"team": "platform"}, Annotations: map[string]string{"note": "kept"}},
					Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
						ParamKind:        &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
						MatchConstraints: deploymentRules,
						Variables:        []admissionregistrationv1.Variable{{Name: "limit", Expression: "int(params.data.maxReplicas)"}},
						Validations: []admissionregistrationv1.Validation{{
							Expression:        "object.spec.replicas <= variables.limit",
							MessageExpression: "'asks for ' + string(object.spec.replicas) + ' replicas'",
							Reason:            pointer(metav1.StatusReasonForbidden),
						}},
						FailurePolicy: pointer(admissionregistrationv1.Fail),
					},
				},
				&admissionregistrationv1.ValidatingAdmissionPolicyBinding{
					TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicyBinding"},
					ObjectMeta: metav1.ObjectMeta{Name: "max-replicas", Labels: map[string]string{"team": "platform"}, Annotations: map[string]string{"note": "kept"}},
					Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
						PolicyName: "max-replicas",
						ParamRef: &admissionregistrationv1.ParamRef{
							Name: "limits", Namespace: "policy-params",
							ParameterNotFoundAction: pointer(admissionregistrationv1.DenyAction),
						},
						ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn, admissionregistrationv1.Audit},
					},
				},
			},
			lost: []string{"spec.validations[0].fieldPath (spec.replicas) is not carried over: native validations have no fieldPath"},
		},
		{
			name: "mutating with apply configuration and JSON patch",
			policy: `
apiVersion: policies.doris-admission.io/v1alpha1
kind: MutatingPolicy
metadata: {name: defaults}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  paramRef: {parameterNotFoundAction: Allow}` + exportRules + `
  matchConditions:
    - {name: no-team, expression: "!has(object.metadata.labels) || !('team' in object.metadata.labels)"}
  mutations:
    - patchType: ApplyConfiguration
      applyConfiguration:
        expression: 'Object{metadata: Object.metadata{labels: {"team": params.data.team}}}'
    - patchType: JSONPatch
      jsonPatch:
        expression: "[JSONPatch{op: 'add', path: '/spec/minReadySeconds', value: 5}]"
`,
			want: []runtime.Object{
				&admissionregistrationv1.MutatingAdmissionPolicy{
					TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicy"},
					ObjectMeta: metav1.ObjectMeta{Name: "defaults"},
					Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
						ParamKind:        &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
						MatchConstraints: deploymentRules,
						MatchConditions:  []admissionregistrationv1.MatchCondition{{Name: "no-team", Expression: "!has(object.metadata.labels) || !('team' in object.metadata.labels)"}},
						Mutations: []admissionregistrationv1.Mutation{
							{
								PatchType:          admissionregistrationv1.PatchTypeApplyConfiguration,
								ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{Expression: `Object{metadata: Object.metadata{labels: {"team": params.data.team}}}`},
							},
							{
								PatchType: admissionregistrationv1.PatchTypeJSONPatch,
								JSONPatch: &admissionregistrationv1.JSONPatch{Expression: "[JSONPatch{op: 'add', path: '/spec/minReadySeconds', value: 5}]"},
							},
						},
						FailurePolicy:      pointer(admissionregistrationv1.Fail),
						ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
					},
				},
				&admissionregistrationv1.MutatingAdmissionPolicyBinding{
					TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicyBinding"},
					ObjectMeta: metav1.ObjectMeta{Name: "defaults"},
					Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
						PolicyName: "defaults",
						// No name selects every object, as an empty selector does natively.
						ParamRef: &admissionregistrationv1.ParamRef{
							Selector:                &metav1.LabelSelector{},
							ParameterNotFoundAction: pointer(admissionregistrationv1.AllowAction),
						},
					},
				},
			},
		},
		{
			name: "calls library functions that read the cluster",
			policy: `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: doris-only}
spec:
  matchConstraints:
    resourceRules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [services]}
  matchConditions:
    - {name: fe, expression: "dorisRole(object) == 'fe'"}
  variables:
    - {name: taken, expression: "object.spec.ports.filter(p, size(inventory.nodePortOwners(p.nodePort)) > 0)"}
  validations:
    - expression: "size(variables.taken) == 0 && dorisContainer(object) >= 0 && dorisSelectedPorts(object, 'db') == [] && dorisFEService(object, 'db') == ''"
`,
			notExported: []string{
				"its expressions call dorisSelectedPorts, dorisFEService, which only doris-admission provides",
				"and inventory.nodePortOwners, which reads doris-admission's index of the cluster's Services",
				"(first in spec.variables[0].expression)",
				"keep enforcing it with doris-admission",
			},
			// The pure functions would be inlined: only the others are named.
			notInExplanation: []string{"dorisRole", "dorisContainer"},
			calls:            []string{"inventory.nodePortOwners", "dorisSelectedPorts", "dorisFEService"},
		},
		{
			name: "dorisPort with a computed port name",
			policy: `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: port-by-name}
spec:
  matchConstraints:
    resourceRules:
      - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [statefulsets]}
  variables:
    - {name: name, expression: "object.metadata.?annotations[?'port'].orValue('query')"}
  validations:
    - expression: "dorisRole(object) == '' || dorisPort(object, variables.name) > 1024"
`,
			notExported: []string{
				"its expressions call dorisPort, which only doris-admission provides (first in spec.validations[0].expression)",
				"dorisPort in spec.validations[0].expression names its port with variables.name, which is known only when the policy runs: only a call with a constant port name (such as 'query') can be inlined as plain CEL",
			},
			notInExplanation: []string{"dorisRole"},
			calls:            []string{"dorisPort"},
		},
		{
			name: "dorisPort with a port name that is not a Doris port",
			policy: `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: no-such-port}
spec:
  matchConstraints:
    resourceRules:
      - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [statefulsets]}
  validations:
    - expression: "dorisPort(object, dorisRole(object) == 'fe' ? 'query' : 'mysql') > 1024"
`,
			notExported: []string{
				`dorisPort in spec.validations[0].expression cannot be inlined: no Doris port is called "mysql" (the Doris ports are be, brpc, edit-log, heartbeat, http, query, rpc, webserver)`,
			},
			calls: []string{"dorisPort"},
		},
		{
			name: "a pure function with the wrong arguments",
			policy: `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: no-object}
spec:
  matchConstraints:
    resourceRules:
      - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [statefulsets]}
  validations:
    - expression: "dorisRole() == 'fe'"
`,
			notExported: []string{"spec.validations[0].expression does not compile: found no matching overload for 'dorisRole' applied to '()'", "fix it first"},
		},
		{
			name: "a mistake next to a pure function",
			policy: `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: mistake}
spec:
  matchConstraints:
    resourceRules:
      - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [statefulsets]}
  validations:
    - expression: "dorisRole(object) == 1"
`,
			// Reported where the user wrote it, not in the inlined CEL.
			notExported: []string{"spec.validations[0].expression does not compile: found no matching overload for '_==_' applied to '(string, int)'", "fix it first"},
		},
		{
			name: "does not compile",
			policy: `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: typo}
spec:` + exportRules + `
  validations:
    - expression: "dorisRol(object) == ''"
`,
			notExported: []string{"spec.validations[0].expression does not compile:", "undeclared reference to 'dorisRol'", "fix it first"},
		},
		{
			name: "names a field the kind does not have",
			policy: `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: typo}
spec:` + exportRules + `
  validations:
    - expression: "object.spec.replica <= 5"
`,
			notExported: []string{"spec.validations[0].expression does not compile:", "undefined field 'replica'"},
		},
		{
			name: "mutating on DELETE",
			policy: `
apiVersion: policies.doris-admission.io/v1alpha1
kind: MutatingPolicy
metadata: {name: on-delete}
spec:
  matchConstraints:
    resourceRules:
      - {apiGroups: [apps], apiVersions: [v1], operations: [DELETE], resources: [deployments]}
  mutations:
    - patchType: JSONPatch
      jsonPatch: {expression: "[]"}
`,
			notExported: []string{"spec.matchConstraints.resourceRules[0] matches DELETE, which a native MutatingAdmissionPolicy cannot"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exported := Export(fixtures.Policies(t, tt.policy))
			if len(exported) != 1 {
				t.Fatalf("got %d exports, want 1", len(exported))
			}
			e := exported[0]
			if diff := cmp.Diff(tt.want, e.Objects); diff != "" {
				t.Errorf("native objects (-want +got):\n%s", diff)
			}
			if (e.NotExported != "") != (tt.want == nil) {
				t.Errorf("NotExported = %q, want it set only when nothing is exported", e.NotExported)
			}
			for _, phrase := range tt.notExported {
				if !strings.Contains(e.Explanation(), phrase) {
					t.Errorf("the explanation lacks %q:\n%s", phrase, e.Explanation())
				}
			}
			for _, name := range tt.notInExplanation {
				if strings.Contains(e.Explanation(), name) {
					t.Errorf("the explanation names %s:\n%s", name, e.Explanation())
				}
			}
			if tt.calls != nil && !cmp.Equal(tt.calls, e.Calls) {
				t.Errorf("Calls = %q, want %q", e.Calls, tt.calls)
			}
			if len(tt.lost) != len(e.Lost) {
				t.Errorf("Lost = %q, want %d notes", e.Lost, len(tt.lost))
			}
			for i := range min(len(tt.lost), len(e.Lost)) {
				if !strings.Contains(e.Lost[i], tt.lost[i]) {
					t.Errorf("Lost[%d] = %q, want it to hold %q", i, e.Lost[i], tt.lost[i])
				}
			}
		})
	}
}

// TestExportYAML checks the documents an exported policy is written as: the
// source and what is lost in comments, then the policy and its binding.
func TestExportYAML(t *testing.T) {
	exported := Export(fixtures.Policies(t, `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: owner-label}
spec:
  validationActions: [Warn]`+exportRules+`
  validations:
    - {expression: "has(object.metadata.labels)", message: "has no labels", fieldPath: metadata.labels}
`))
	data, err := exported[0].YAML()
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if !strings.HasPrefix(text, "# ValidatingPolicy owner-label (test.yaml)\n# Note: spec.validations[0].fieldPath (metadata.labels) is not carried over") {
		t.Errorf("the comments do not name the policy and the lost fieldPath:\n%s", text)
	}
	docs := strings.Split(text, "---\n")
	if len(docs) != 2 {
		t.Fatalf("got %d documents, want 2:\n%s", len(docs), text)
	}
	var binding admissionregistrationv1.ValidatingAdmissionPolicyBinding
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &binding); err != nil {
		t.Fatal(err)
	}
	if binding.Kind != "ValidatingAdmissionPolicyBinding" || binding.Spec.PolicyName != "owner-label" || !cmp.Equal(binding.Spec.ValidationActions, []admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn}) {
		t.Errorf("unexpected binding:\n%s", docs[1])
	}
	if strings.Contains(text, "creationTimestamp") || strings.Contains(text, "status") {
		t.Errorf("the documents carry empty metadata or status:\n%s", text)
	}
}

// TestExportBuiltin checks which built-in policies are exported: those that
// call only the pure doris-admission functions, which are inlined; the
// others are explained, with only the functions that read the cluster.
func TestExportBuiltin(t *testing.T) {
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantExported := []string{"doris-agent", "doris-conf", "doris-fe-start", "doris-grace-period", "doris-hooks", "doris-probes"}
	wantCalls := map[string][]string{
		"doris-env":           {"dorisMountedConf", "dorisFEService"},
		"doris-fe-quorum":     {"dorisStatefulSetRole"},
		"doris-checks":        {"dorisMountedConf", "dorisService", "dorisFEService"},
		"doris-service-ports": {"dorisSelectedPorts"},
		"node-ports":          {"inventory.nodePortOwners"},
	}
	var exported []string
	for _, e := range Export(builtins) {
		name := e.Policy.Name()
		if e.NotExported == "" {
			exported = append(exported, name)
			if len(e.Objects) != 2 {
				t.Errorf("%s: exported as %d objects, want 2", name, len(e.Objects))
			}
			if len(e.Inlined) == 0 || len(e.Lost) == 0 || !strings.Contains(e.Lost[0], "are inlined") {
				t.Errorf("%s: inlined %q, notes %q: want the inlined functions named in the first note", name, e.Inlined, e.Lost)
			}
			data, err := e.YAML()
			if err != nil {
				t.Fatal(err)
			}
			for _, function := range []string{"dorisRole(", "dorisContainer(", "dorisPort(", "dorisConfDir("} {
				if strings.Contains(string(data), function) {
					t.Errorf("%s: the native policy still calls %s):\n%s", name, function, data)
				}
			}
			if !strings.Contains(string(data), "# Note: the calls of doris-admission's "+joinAnd(e.Inlined)+" are inlined") {
				t.Errorf("%s: the comments do not say what is inlined:\n%s", name, data)
			}
			continue
		}
		if name == "doris-governing-service" {
			if !strings.Contains(e.NotExported, "only creates objects (spec.generate)") {
				t.Errorf("%s: not exported because %q, want it to say native policies cannot create objects", name, e.NotExported)
			}
			continue
		}
		want, ok := wantCalls[name]
		if !ok {
			t.Errorf("%s is not exported: %s", name, e.NotExported)
			continue
		}
		if !cmp.Equal(e.Calls, want) {
			t.Errorf("%s: Calls = %q, want %q", name, e.Calls, want)
		}
		for _, call := range e.Calls {
			if !strings.Contains(e.NotExported, call) {
				t.Errorf("%s: the explanation does not name %s: %s", name, call, e.NotExported)
			}
		}
		for _, pure := range dorislib.PureFunctions {
			if strings.Contains(e.NotExported, pure) {
				t.Errorf("%s: the explanation names %s, which is inlined: %s", name, pure, e.NotExported)
			}
		}
	}
	if !cmp.Equal(exported, wantExported) {
		t.Errorf("exported %q, want %q", exported, wantExported)
	}
}

// TestExportIsDeterministic exports the built-in policies twice.
func TestExportIsDeterministic(t *testing.T) {
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	text := func() string {
		var out strings.Builder
		for _, e := range Export(builtins) {
			if e.NotExported != "" {
				out.WriteString(e.Explanation() + "\n")
				continue
			}
			data, err := e.YAML()
			if err != nil {
				t.Fatal(err)
			}
			out.Write(data)
		}
		return out.String()
	}
	if first, second := text(), text(); first != second {
		t.Errorf("two exports differ:\n%s", cmp.Diff(first, second))
	}
}

// TestExportInlinesPureFunctions exports a policy that calls each pure
// function, in conditions, variables, validations and messages, with a
// choice of port names and the functions nested, and checks that the native
// policy is plain CEL that validates as the policy does.
func TestExportInlinesPureFunctions(t *testing.T) {
	policy := fixtures.Policies(t, `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: doris-ports}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
      - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [statefulsets]}
  matchConditions:
    - {name: is-doris, expression: "dorisRole(object) != ''"}
    - {name: kept, expression: "has(object.spec.template.spec.containers) && object.spec.template.spec.containers.exists(c, has(c.image))"}
  variables:
    - {name: index, expression: "dorisContainer(object)"}
    - {name: port, expression: "dorisPort(object, dorisRole(object) == 'fe' ? 'query' : 'heartbeat')"}
  validations:
    - expression: "variables.port != 9999 && dorisPort(object, 'http') != 9999"
      messageExpression: "'the ' + dorisRole(object) + ' in container ' + string(variables.index) + ' uses port 9999; conf in ' + dorisConfDir(object)"
    - expression: "dorisConfDir(object).startsWith('/opt/') || dorisConfDir(object).startsWith('/etc/')"
      message: "the conf dir is elsewhere"
`)[0]
	e := Export([]policies.Policy{policy})[0]
	if e.NotExported != "" {
		t.Fatalf("not exported: %s", e.NotExported)
	}
	if want := []string{"dorisContainer", "dorisRole", "dorisPort", "dorisConfDir"}; !cmp.Equal(e.Inlined, want) {
		t.Errorf("Inlined = %q, want %q", e.Inlined, want)
	}
	native := e.Objects[0].(*admissionregistrationv1.ValidatingAdmissionPolicy)
	if got := native.Spec.MatchConditions[1].Expression; got != policy.Validating.Spec.MatchConditions[1].Expression {
		t.Errorf("an expression without calls was rewritten: %s", got)
	}
	if got := native.Spec.MatchConditions[0].Expression; !strings.Contains(got, `.matches("(?s)^([^@]*/)?(apache/doris:fe-`) {
		t.Errorf("the role condition is not inlined: %s", got)
	}
	back := nativeAsPolicy(t, e)
	if calls, problems := plainCompile(back, compile.KubernetesEnvSet()); len(calls) > 0 || len(problems) > 0 {
		t.Fatalf("the native policy does not compile in the plain Kubernetes environment: %v %v", calls, problems)
	}
	docs, objects := exportFixtures(t)
	ours, theirs := exportEngine(t, docs, policy), exportEngine(t, docs, back)
	denied := 0
	for _, obj := range objects {
		name := obj.GetName() + " (" + obj.GetAnnotations()["fixture"] + ")"
		req, err := ours.RequestForObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := ours.Validate(context.Background(), req)
		got, gotErr := theirs.Validate(context.Background(), req)
		if (wantErr != nil) != (gotErr != nil) {
			t.Errorf("%s: the policy gives error %v, the native one %v", name, wantErr, gotErr)
			continue
		}
		if wantErr != nil {
			continue
		}
		if want.Denied != nil {
			denied++
		}
		if diff := cmp.Diff(withEvaluationErrorsCut(want.Denied), withEvaluationErrorsCut(got.Denied)); diff != "" {
			t.Errorf("%s: the failures differ (-policy +native):\n%s", name, diff)
		}
	}
	if denied == 0 {
		t.Errorf("no fixture is denied: the test shows little")
	}
}

// withEvaluationErrorsCut are the violations with the message of an expression
// that could not be evaluated cut to the error: the expression, which the
// message quotes, is another after inlining. "no such key: " is how the
// inlined dorisPort fails, where the function says the rest.
func withEvaluationErrorsCut(violations []engine.Violation) []engine.Violation {
	const resulted = "' resulted in error: "
	out := slices.Clone(violations)
	for i, v := range out {
		if j := strings.LastIndex(v.Message, resulted); j >= 0 && strings.Contains(v.Message, "could not be evaluated") {
			out[i].Message = "could not be evaluated: " + v.Message[j+len(resulted):]
		}
		if strings.Contains(v.Message, "could not be evaluated") {
			out[i].Message = strings.ReplaceAll(out[i].Message, "no such key: ", "")
		}
	}
	return out
}

// TestExportedBuiltinsMutateLikeTheEngine runs each exported built-in policy,
// read back from its native objects, and the policy itself on the
// StatefulSets of the built-in policies' tests and of deploy/examples, and on
// variants of them, and requires the same result: the same object, or an
// error from both. It does the same with all of them at once.
func TestExportedBuiltinsMutateLikeTheEngine(t *testing.T) {
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	docs, objects := exportFixtures(t)
	var originals, natives []policies.Policy
	for _, e := range Export(builtins) {
		if e.NotExported != "" || e.Policy.Mutating == nil {
			continue
		}
		back := nativeAsPolicy(t, e)
		if calls, problems := plainCompile(back, compile.KubernetesEnvSet()); len(calls) > 0 || len(problems) > 0 {
			t.Fatalf("%s: the native policy does not compile in the plain Kubernetes environment: %v %v", e.Policy.Name(), calls, problems)
		}
		originals, natives = append(originals, e.Policy), append(natives, back)
	}
	if len(natives) < 5 {
		t.Fatalf("only %d built-in policies are exported", len(natives))
	}
	run := func(t *testing.T, original, native []policies.Policy) {
		ours, theirs := exportEngine(t, docs, original...), exportEngine(t, docs, native...)
		changed, failed := 0, 0
		for _, obj := range objects {
			name := obj.GetNamespace() + "/" + obj.GetName() + " (" + obj.GetAnnotations()["fixture"] + ")"
			req, err := ours.RequestForObject(obj)
			if err != nil {
				t.Fatal(err)
			}
			want, wantErr := ours.Mutate(context.Background(), req)
			got, gotErr := theirs.Mutate(context.Background(), req)
			if (wantErr != nil) != (gotErr != nil) {
				t.Errorf("%s: the policy gives error %v, the native one %v", name, wantErr, gotErr)
				continue
			}
			if wantErr != nil {
				// The same expression fails.
				var wantPolicy, gotPolicy *engine.PolicyError
				if !errors.As(wantErr, &wantPolicy) || !errors.As(gotErr, &gotPolicy) || wantPolicy.Policy != gotPolicy.Policy || wantPolicy.Field != gotPolicy.Field {
					t.Errorf("%s: the policy fails with %v, the native one with %v", name, wantErr, gotErr)
				}
				failed++
				continue
			}
			if want.Object != nil {
				changed++
			}
			if (want.Object == nil) != (got.Object == nil) || (want.Object != nil && !cmp.Equal(want.Object.Object, got.Object.Object)) {
				var wantObj, gotObj map[string]any
				if want.Object != nil {
					wantObj = want.Object.Object
				}
				if got.Object != nil {
					gotObj = got.Object.Object
				}
				t.Errorf("%s: the objects differ (-policy +native):\n%s", name, cmp.Diff(wantObj, gotObj))
			}
			if !cmp.Equal(want.Applied, got.Applied) || !cmp.Equal(want.Warnings, got.Warnings) {
				t.Errorf("%s: the policy applied %q (warnings %q), the native one %q (%q)", name, want.Applied, want.Warnings, got.Applied, got.Warnings)
			}
		}
		t.Logf("%d objects: %d changed, %d failed in both", len(objects), changed, failed)
		if changed == 0 {
			t.Errorf("no object is changed: the test shows little")
		}
	}
	for i := range natives {
		t.Run(originals[i].Name(), func(t *testing.T) { run(t, originals[i:i+1], natives[i:i+1]) })
	}
	t.Run("all", func(t *testing.T) { run(t, originals, natives) })
}

// nativeAsPolicy reads an exported policy back as one of ours, from the
// native policy and its binding: our kinds have the native spec, with the
// binding's paramRef and validationActions folded in.
func nativeAsPolicy(t *testing.T, e Exported) policies.Policy {
	t.Helper()
	switch native := e.Objects[0].(type) {
	case *admissionregistrationv1.MutatingAdmissionPolicy:
		binding := e.Objects[1].(*admissionregistrationv1.MutatingAdmissionPolicyBinding)
		return policies.Policy{Origin: "exported", Mutating: &v1alpha1.MutatingPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: native.Name},
			Spec:       v1alpha1.MutatingPolicySpec{MutatingAdmissionPolicySpec: *native.Spec.DeepCopy(), ParamRef: binding.Spec.ParamRef.DeepCopy()},
		}}
	case *admissionregistrationv1.ValidatingAdmissionPolicy:
		binding := e.Objects[1].(*admissionregistrationv1.ValidatingAdmissionPolicyBinding)
		spec := native.Spec.DeepCopy()
		validations := make([]v1alpha1.Validation, len(spec.Validations))
		for i, v := range spec.Validations {
			validations[i] = v1alpha1.Validation{Expression: v.Expression, Message: v.Message, Reason: v.Reason, MessageExpression: v.MessageExpression}
		}
		return policies.Policy{Origin: "exported", Validating: &v1alpha1.ValidatingPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: native.Name},
			Spec: v1alpha1.ValidatingPolicySpec{
				ParamKind: spec.ParamKind, MatchConstraints: spec.MatchConstraints, Validations: validations,
				FailurePolicy: spec.FailurePolicy, AuditAnnotations: spec.AuditAnnotations, MatchConditions: spec.MatchConditions,
				Variables: spec.Variables, ValidationActions: binding.Spec.ValidationActions, ParamRef: binding.Spec.ParamRef.DeepCopy(),
			},
		}}
	}
	t.Fatalf("%s is exported as %T", e.Policy.Name(), e.Objects[0])
	return policies.Policy{}
}

// exportEngine is an offline engine with only the given policies.
func exportEngine(t *testing.T, docs []policies.Document, policies ...policies.Policy) *engine.Engine {
	t.Helper()
	e := engine.NewEngine(source.Offline(docs))
	for _, l := range e.Load(policies) {
		if len(l.Problems) > 0 {
			t.Fatalf("%s %s does not compile: %v", l.Kind(), l.Name(), l.Problems)
		}
	}
	return e
}

// exportFixtures are the documents of the built-in policies' test resources
// and of the deploy/examples seeds, and the StatefulSets to mutate: theirs,
// those the built-in tests expect (mutated already), and variants, each
// marked with the annotation "fixture", that take the other branches of the
// pure functions: ports and the conf dir from annotations (some that are not
// port numbers), named container ports, a role from the pod template's label
// only, images with registries and digests, no container.
func exportFixtures(t *testing.T) ([]policies.Document, []*unstructured.Unstructured) {
	t.Helper()
	docs := fixtures.Read(t, "../builtin/tests/resources/*.yaml", "../../deploy/examples/seed-*.yaml")
	expected := fixtures.Read(t, "../builtin/tests/expected/*.yaml")
	var objects, bases []*unstructured.Unstructured
	for _, doc := range slices.Concat(docs, expected) {
		if doc.Object.GetKind() != "StatefulSet" {
			continue
		}
		obj := doc.Object.DeepCopy()
		mark(obj, filepath.Base(doc.Origin))
		objects = append(objects, obj)
		if !strings.Contains(doc.Origin, "expected") {
			bases = append(bases, obj)
		}
	}
	if len(objects) < 15 {
		t.Fatalf("found only %d StatefulSets", len(objects))
	}
	// container is the last container of obj, to change in place.
	container := func(obj *unstructured.Unstructured) map[string]any {
		containers, _, _ := unstructured.NestedFieldNoCopy(obj.Object, "spec", "template", "spec", "containers")
		list := containers.([]any)
		return list[len(list)-1].(map[string]any)
	}
	variants := []struct {
		name   string
		change func(obj *unstructured.Unstructured)
	}{
		{"port annotations", func(obj *unstructured.Unstructured) {
			annotate(obj, map[string]string{"doris.apache.org/query-port": "19031", "doris.apache.org/http-port": "+18031",
				"doris.apache.org/heartbeat-port": "0019051", "doris.apache.org/webserver-port": "18041"})
		}},
		{"a port annotation that is not a number", func(obj *unstructured.Unstructured) {
			annotate(obj, map[string]string{"doris.apache.org/query-port": "9o30", "doris.apache.org/heartbeat-port": "9o50"})
		}},
		{"a port annotation out of range", func(obj *unstructured.Unstructured) {
			annotate(obj, map[string]string{"doris.apache.org/http-port": "0", "doris.apache.org/webserver-port": "65536"})
		}},
		{"conf dir annotation", func(obj *unstructured.Unstructured) {
			annotate(obj, map[string]string{"doris.apache.org/conf-dir": "/etc/doris"})
		}},
		{"empty conf dir annotation", func(obj *unstructured.Unstructured) {
			annotate(obj, map[string]string{"doris.apache.org/conf-dir": ""})
		}},
		{"named container ports", func(obj *unstructured.Unstructured) {
			c := container(obj)
			c["ports"] = []any{
				map[string]any{"name": "query", "containerPort": int64(29030)}, map[string]any{"name": "http-port", "containerPort": int64(28030)},
				map[string]any{"name": "heartbeat", "containerPort": int64(29050)}, map[string]any{"name": "webserver-port", "containerPort": int64(28040)},
			}
		}},
		{"role from the pod template's label only", func(obj *unstructured.Unstructured) {
			role := dorislib.Role(obj.Object)
			labels := obj.GetLabels()
			delete(labels, dorislib.RoleLabel)
			obj.SetLabels(labels)
			c := container(obj)
			c["name"], c["image"] = "main", "registry.local/db:7"
			if err := unstructured.SetNestedField(obj.Object, role, "spec", "template", "metadata", "labels", dorislib.RoleLabel); err != nil {
				t.Fatal(err)
			}
		}},
		{"image with a registry port and a digest", func(obj *unstructured.Unstructured) {
			c := container(obj)
			c["name"] = "main"
			c["image"] = "registry.local:5000/mirror/apache/doris:" + dorislib.Role(obj.Object) + "-2.1.7@sha256:0123"
		}},
		{"selectdb image", func(obj *unstructured.Unstructured) {
			c := container(obj)
			c["name"] = "main"
			c["image"] = "selectdb/doris." + dorislib.Role(obj.Object) + "-ubuntu:2.0.3"
		}},
		{"container named doris-<role>, image of another name", func(obj *unstructured.Unstructured) {
			c := container(obj)
			c["name"], c["image"] = "doris-"+dorislib.Role(obj.Object), "registry.local/db:7"
		}},
		{"container named <role>, image of another name", func(obj *unstructured.Unstructured) {
			c := container(obj)
			c["name"], c["image"] = dorislib.Role(obj.Object), "registry.local/db:7"
		}},
		{"a sidecar first", func(obj *unstructured.Unstructured) {
			containers, _, _ := unstructured.NestedFieldNoCopy(obj.Object, "spec", "template", "spec", "containers")
			sidecar := map[string]any{"name": "log", "image": "fluent/fluent-bit:3", "ports": []any{map[string]any{"name": "http", "containerPort": int64(2020)}}}
			if err := unstructured.SetNestedField(obj.Object, append([]any{sidecar}, containers.([]any)...), "spec", "template", "spec", "containers"); err != nil {
				t.Fatal(err)
			}
		}},
		{"no containers", func(obj *unstructured.Unstructured) {
			obj.SetLabels(map[string]string{dorislib.RoleLabel: "fe"})
			if err := unstructured.SetNestedSlice(obj.Object, []any{}, "spec", "template", "spec", "containers"); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, base := range bases {
		if dorislib.Role(base.Object) == "" {
			continue
		}
		for _, v := range variants {
			obj := base.DeepCopy()
			v.change(obj)
			mark(obj, obj.GetAnnotations()["fixture"]+", "+v.name)
			objects = append(objects, obj)
		}
	}
	return docs, objects
}

// mark sets the annotation that names a fixture in messages.
func mark(obj *unstructured.Unstructured, fixture string) {
	annotate(obj, map[string]string{"fixture": fixture})
}

func annotate(obj *unstructured.Unstructured, annotations map[string]string) {
	all := obj.GetAnnotations()
	if all == nil {
		all = map[string]string{}
	}
	maps.Copy(all, annotations)
	obj.SetAnnotations(all)
}

// TestExportDuplicateNames checks that two policies of one kind and name are
// not both exported: the second would replace the first.
func TestExportDuplicateNames(t *testing.T) {
	p := fixtures.Policies(t, `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: twice}
spec:`+exportRules+`
  validations: [{expression: "true"}]
`)[0]
	other := p
	other.Origin = "other.yaml"
	exported := Export([]policies.Policy{p, other})
	first, second := exported[0], exported[1]
	if first.NotExported != "" || !strings.Contains(second.NotExported, "another ValidatingPolicy named twice ("+first.Policy.Origin+") is exported already") {
		t.Errorf("got %q and %q", first.NotExported, second.NotExported)
	}
}
