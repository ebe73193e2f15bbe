package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// execute runs the root command with args and returns stdout, stderr and the error.
func execute(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCommand()
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

const examplePolicies = "../../deploy/examples/policies"

func TestMutatePrintsEveryReadableDocument(t *testing.T) {
	out, errOut, err := execute(t, "", "mutate", "-f", "testdata/mixed.yaml", "--policies", examplePolicies)
	if !errors.Is(err, errFailed) {
		t.Errorf("mutate of a file with broken documents returned %v, want errFailed", err)
	}
	if got := strings.Count(out, "---\n"); got != 2 {
		t.Errorf("printed %d separators, want 2 (three readable documents):\n%s", got, out)
	}
	if !strings.Contains(out, "team: platform") || !strings.Contains(out, "name: cfg") {
		t.Errorf("the Deployment was not mutated or the ConfigMap not printed:\n%s", out)
	}
	for _, want := range []string{
		"testdata/mixed.yaml: document 3: Foo has no apiVersion",
		"testdata/mixed.yaml: document 4: unknown kind Widget",
		"testdata/mixed.yaml: document 5: not valid YAML",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestMutateDiffFromStdin(t *testing.T) {
	in := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec: {replicas: 1}\n"
	out, _, err := execute(t, in, "mutate", "-f", "-", "--policies", examplePolicies, "--diff")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "+  labels:\n+    team: platform") || !strings.HasPrefix(out, "--- - (document 1: Deployment api)") {
		t.Errorf("unexpected diff:\n%s", out)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name, replicas string
		wantErr        bool
		wantOut        string
	}{
		{"denied", "7", true, "Deployment default/api: spec.replicas: asks for 7 replicas; at most 5 are allowed (policy max-replicas)\n" +
			"Warning: Deployment default/api: metadata.labels: has no owner label; add one so people know whom to ask (policy owner-label)\n"},
		{"warned only", "2", false, "Warning: Deployment default/api: metadata.labels: has no owner label; add one so people know whom to ask (policy owner-label)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec: {replicas: " + tt.replicas + "}\n"
			out, _, err := execute(t, in, "validate", "-f", "-", "--policies", examplePolicies)
			if (err != nil) != tt.wantErr {
				t.Errorf("error = %v, want error %v", err, tt.wantErr)
			}
			if out != tt.wantOut {
				t.Errorf("output:\n%s\nwant:\n%s", out, tt.wantOut)
			}
		})
	}
}

func TestPolicyListShowsProblems(t *testing.T) {
	in := `apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: typo}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [statefulsets]}]
  validations: [{expression: "object.spec.replica > 1"}]
`
	out, _, err := execute(t, in, "policy", "list", "--policies", "-")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "typo") || !strings.Contains(out, "1 problems: spec.validations[0].expression") {
		t.Errorf("policy list does not report the typo:\n%s", out)
	}
}

func TestCertsGenerateWritesAServablePair(t *testing.T) {
	dir := t.TempDir()
	out, _, err := execute(t, "", "certs", "generate", "--service", "hook", "--namespace", "ops", "--out", dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")); err != nil {
		t.Errorf("tls.crt and tls.key do not load as a pair: %v", err)
	}
	if info, err := os.Stat(filepath.Join(dir, "tls.key")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("tls.key is not private to its owner: %v %v", info.Mode(), err)
	}
	if !strings.Contains(out, "for hook.ops.svc") || !strings.Contains(out, "caBundle: ") {
		t.Errorf("output: %s", out)
	}
}

// TestValidateSeesParamsAndNamespaceLabels: a policy limited to production
// namespaces, with its limit in a ConfigMap, applies only when the offline run
// is told the namespace's labels, and then reads the limit from --params.
func TestValidateSeesParamsAndNamespaceLabels(t *testing.T) {
	args := []string{"validate", "-f", "testdata/params/deployment.yaml", "--policies", "testdata/params/policy.yaml"}
	if out, _, err := execute(t, "", args...); err != nil || out != "" {
		t.Errorf("without the namespace's labels the policy must not apply: %v %q", err, out)
	}
	args = append(args, "--namespace-labels", "env=prod")
	if out, _, err := execute(t, "", args...); !errors.Is(err, errFailed) || !strings.Contains(out, "no ConfigMap parameters found") {
		t.Errorf("without --params the missing parameter must deny: %v %q", err, out)
	}
	out, _, err := execute(t, "", append(args, "--params", "testdata/params/limit.yaml", "-o", "json")...)
	if !errors.Is(err, errFailed) {
		t.Errorf("a denial must exit 1, got %v", err)
	}
	var report struct {
		Allowed bool
		Results []documentResult
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("--output json is not JSON: %v\n%s", err, out)
	}
	want := []violation{{Policy: "prod-replicas", Message: "at most 2 replicas in production"}}
	if report.Allowed || len(report.Results) != 1 || report.Results[0].Name != "api" || !reflect.DeepEqual(report.Results[0].Denials, want) {
		t.Errorf("report = %+v, want api denied with %v", report, want)
	}
}

func TestMutateOutputJSONIsAList(t *testing.T) {
	out, _, err := execute(t, "", "mutate", "-f", "../../deploy/examples/policy-tests/deployments.yaml", "--policies", examplePolicies, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Kind  string
		Items []map[string]any
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || list.Kind != "List" || len(list.Items) != 3 || !strings.Contains(out, `"team": "platform"`) {
		t.Errorf("want a List of the 3 Deployments, the last with the team label: %v\n%s", err, out)
	}
	if _, _, err := execute(t, "", "mutate", "-f", "-", "-o", "yaml"); err == nil || !strings.Contains(err.Error(), `--output "yaml": write text or json`) {
		t.Errorf("an unknown --output: %v", err)
	}
}

// mutate prints, after a document, the objects the generating policies would
// create for it; not those the documents or --params hold already.
func TestMutatePrintsGeneratedObjects(t *testing.T) {
	const fe = "../../deploy/examples/seed-fe-plain.yaml"
	out, _, err := execute(t, "", "mutate", "-f", fe)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(out, "---\n")
	if len(docs) != 3 || !strings.Contains(docs[2], "kind: Service\n") || !strings.Contains(docs[2], "name: doris-fe-service\n") ||
		!strings.Contains(docs[2], "clusterIP: None") || !strings.Contains(docs[2], "policies.doris-admission.io/generated-by: doris-governing-service/governing-service") {
		t.Errorf("want the Service, the StatefulSet and the generated governing Service doris-fe-service:\n%s", out)
	}
	diff, _, err := execute(t, "", "mutate", "-f", fe, "--diff")
	if err != nil || !strings.Contains(diff, "--- /dev/null\n+++ Service doris-fe-service (generated by doris-governing-service/governing-service for "+fe+" (document 2: StatefulSet doris-fe))") {
		t.Errorf("--diff does not show the generated Service as new: %v\n%s", err, diff)
	}
	existing := filepath.Join(t.TempDir(), "service.yaml")
	if err := os.WriteFile(existing, []byte("apiVersion: v1\nkind: Service\nmetadata: {name: doris-fe-service}\nspec: {clusterIP: None}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err = execute(t, "", "mutate", "-f", fe, "--params", existing)
	if err != nil || strings.Count(out, "---\n") != 1 {
		t.Errorf("with the governing Service in --params, want only the two documents: %v\n%s", err, out)
	}
}

// A policy with failurePolicy Fail that cannot be evaluated on a document
// makes the API server refuse it: mutate leaves it out of the output (a
// pipeline that ignores the exit status must not apply it) and says so;
// validate reports it as refused.
func TestFailClosedPolicyLeavesTheDocumentOut(t *testing.T) {
	dir := t.TempDir()
	policy := `apiVersion: policies.doris-admission.io/v1alpha1
kind: MutatingPolicy
metadata: {name: team-from-label}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  mutations:
    - patchType: JSONPatch
      jsonPatch:
        expression: "[JSONPatch{op: 'add', path: '/metadata/annotations', value: {'team': object.metadata.labels['team']}}]"
`
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	in := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec: {replicas: 1}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n"
	out, errOut, err := execute(t, in, "mutate", "-f", "-", "--policies", dir, "--disable-builtin", "*")
	if !errors.Is(err, errFailed) || strings.Contains(out, "kind: Deployment") || !strings.Contains(out, "kind: ConfigMap") {
		t.Errorf("mutate: %v, want exit 1 and only the ConfigMap printed:\n%s", err, out)
	}
	if !strings.Contains(errOut, "policy team-from-label failed at spec.mutations[0].jsonPatch.expression") || !strings.Contains(errOut, "it is left out of the output, as the API server would refuse it") {
		t.Errorf("stderr does not say which policy failed and that the document is left out:\n%s", errOut)
	}
	out, _, err = execute(t, in, "validate", "-f", "-", "--policies", dir, "--disable-builtin", "*")
	if !errors.Is(err, errFailed) || !strings.Contains(out, "Deployment default/api: policy team-from-label failed at spec.mutations[0].jsonPatch.expression") {
		t.Errorf("validate: %v, want the Deployment refused:\n%s", err, out)
	}
}
