package policies

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// policiesOf decodes policy YAML.
func policiesOf(t *testing.T, yamlText string) []Policy {
	t.Helper()
	docs, err := decodeStream("test.yaml", strings.NewReader(yamlText))
	if err != nil {
		t.Fatal(err)
	}
	var ps []Policy
	for _, d := range docs {
		p, err := PolicyFromDocument(d)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

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
		calls       []string
		lost        []string
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
			name: "calls library functions",
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
    - expression: "size(variables.taken) == 0 && dorisContainer(object) >= 0 && dorisRole(object) != ''"
`,
			notExported: []string{
				"its expressions call dorisRole, dorisContainer, which only doris-admission provides",
				"and inventory.nodePortOwners, which reads doris-admission's index of the cluster's Services",
				"(first in spec.variables[0].expression)",
				"keep enforcing it with doris-admission",
			},
			calls: []string{"inventory.nodePortOwners", "dorisRole", "dorisContainer"},
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
			exported := Export(policiesOf(t, tt.policy))
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
	exported := Export(policiesOf(t, `
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

// TestExportBuiltin checks that every built-in policy is either exported or
// explained, and that the explanations name the functions each one calls.
func TestExportBuiltin(t *testing.T) {
	builtin, err := Builtin(DefaultNamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range Export(builtin) {
		if e.NotExported == "" {
			if len(e.Objects) != 2 {
				t.Errorf("%s: exported as %d objects, want 2", e.Policy.Name(), len(e.Objects))
			}
			continue
		}
		if len(e.Calls) == 0 {
			t.Errorf("%s is not exported but calls no doris-admission function: %s", e.Policy.Name(), e.NotExported)
		}
		for _, call := range e.Calls {
			if !strings.Contains(e.NotExported, call) {
				t.Errorf("%s: the explanation does not name %s: %s", e.Policy.Name(), call, e.NotExported)
			}
		}
	}
}

// TestExportDuplicateNames checks that two policies of one kind and name are
// not both exported: the second would replace the first.
func TestExportDuplicateNames(t *testing.T) {
	p := policiesOf(t, `
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: twice}
spec:`+exportRules+`
  validations: [{expression: "true"}]
`)[0]
	other := p
	other.Origin = "other.yaml"
	exported := Export([]Policy{p, other})
	first, second := exported[0], exported[1]
	if first.NotExported != "" || !strings.Contains(second.NotExported, "another ValidatingPolicy named twice ("+first.Policy.Origin+") is exported already") {
		t.Errorf("got %q and %q", first.NotExported, second.NotExported)
	}
}
