package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"sigs.k8s.io/yaml"
)

// exportNamespace is where the fixtures are sent: doris-admission's webhooks
// never receive requests there (kube-system is excluded by their
// namespaceSelector and by serve --exclude-namespaces), so what is done to
// them is done by the native policies alone. The fixtures are only created
// with --dry-run=server: nothing is stored there.
const exportNamespace = "kube-system"

// TestExportedExamplePoliciesActLikeTheEngine exports the example policies
// with doris-admission policy export, applies the native policies with
// kubectl, and checks that the API server mutates, denies and warns about
// Deployments exactly as doris-admission's engine does offline.
func TestExportedExamplePoliciesActLikeTheEngine(t *testing.T) {
	requireNativeAdmissionPolicies(t)
	examples := filepath.Join(repoRoot, "deploy", "examples", "policies")
	native := filepath.Join(t.TempDir(), "native.yaml")
	if stdout, stderr, err := exportRun(suite.serverBin, "policy", "export", "--policies", examples, "-o", native); err != nil || stderr != "" {
		t.Fatalf("policy export: %v\n%s%s", err, stdout, stderr)
	}
	exported, err := os.ReadFile(native)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: ValidatingAdmissionPolicy\n", "kind: ValidatingAdmissionPolicyBinding\n", "kind: MutatingAdmissionPolicy\n", "kind: MutatingAdmissionPolicyBinding\n"} {
		if got := strings.Count(string(exported), want); got == 0 {
			t.Errorf("the export has no %s", strings.TrimSpace(want))
		}
	}

	if out, err := suite.kubectl("apply", "-f", native); err != nil {
		t.Fatalf("applying the exported policies: %v\n%s", err, out)
	}
	probes := newNativePolicyProbes(t)
	t.Cleanup(func() {
		if out, err := suite.kubectl("delete", "-f", native, "--ignore-not-found"); err != nil {
			t.Errorf("deleting the exported policies: %v\n%s", err, out)
		}
		// The API server drops them asynchronously too: wait, so later
		// tests do not meet them.
		probes.wait(t, false)
	})
	probes.wait(t, true)

	fixtures := []struct {
		name     string
		replicas int // 0: not set
		labels   map[string]string
	}{
		{"too-many", 7, nil},
		{"no-owner", 2, nil},
		{"owned", 3, map[string]string{"owner": "ana", "team": "data"}},
		{"at-limit", 5, map[string]string{"owner": "ana"}},
		{"default-replicas", 0, map[string]string{"team": "web"}},
	}
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			file := exportTempFile(t, exportFixture(f.name, f.replicas, f.labels))
			ours := exportEngineVerdict(t, file, examples)
			theirs := exportNativeVerdict(t, file)
			t.Logf("engine: denied %v, %v, labels %v; native: denied %v, %v, labels %v", ours.denied, ours.failures, ours.labels, theirs.denied, theirs.failures, theirs.labels)
			if diff := cmp.Diff(ours.policies(), theirs.policies()); diff != "" {
				t.Errorf("the policies that failed (-engine +native):\n%s\nengine: %s\nnative: %s", diff, ours.output, theirs.output)
			}
			for key, message := range ours.failures {
				// The engine prefixes the validation's fieldPath, which the
				// native policy does not have.
				if got := theirs.failures[key]; got != "" && got != message && !strings.HasSuffix(message, ": "+got) {
					t.Errorf("%s: the engine says %q, the native policy %q", key, message, got)
				}
			}
			if ours.denied != theirs.denied {
				t.Fatalf("denied by the engine: %v, by the native policies: %v\nengine: %s\nnative: %s", ours.denied, theirs.denied, ours.output, theirs.output)
			}
			if !ours.denied && !cmp.Equal(ours.labels, theirs.labels) {
				t.Errorf("labels after the engine's mutations %v, after the native ones %v", ours.labels, theirs.labels)
			}
		})
	}
}

// TestExportBuiltinExplainsWhatItCannotExport checks that policy export
// --builtin accounts for every built-in policy: exported as native objects
// the API server accepts, or explained on stderr with the doris-admission
// functions the policy really calls.
func TestExportBuiltinExplainsWhatItCannotExport(t *testing.T) {
	list, stderr, err := exportRun(suite.serverBin, "policy", "list")
	if err != nil {
		t.Fatalf("policy list: %v\n%s", err, stderr)
	}
	var builtin []string
	for _, line := range strings.Split(list, "\n")[1:] {
		if fields := strings.Fields(line); len(fields) >= 3 && fields[2] == "built-in" {
			builtin = append(builtin, fields[1]+" "+fields[0])
		}
	}
	if len(builtin) == 0 {
		t.Fatalf("policy list names no built-in policy:\n%s", list)
	}

	native, explained, err := exportRun(suite.serverBin, "policy", "export", "--builtin")
	if err != nil {
		t.Fatalf("policy export --builtin: %v\n%s", err, explained)
	}
	explanations := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(explained), "\n") {
		policy, reason, ok := strings.Cut(line, ": not exported: ")
		if !ok {
			t.Errorf("stderr has a line that is not an explanation: %q", line)
			continue
		}
		explanations[policy] = reason
	}
	exportedAny := false
	for _, policy := range builtin {
		kind, name, _ := strings.Cut(policy, " ")
		nativeKind := strings.TrimSuffix(kind, "Policy") + "AdmissionPolicy"
		exported := strings.Contains(native, "kind: "+nativeKind+"\nmetadata:\n  name: "+name+"\n")
		reason, isExplained := explanations[policy]
		delete(explanations, policy)
		switch {
		case exported && isExplained:
			t.Errorf("%s is both exported and explained: %s", policy, reason)
		case !exported && !isExplained:
			t.Errorf("%s is neither exported nor explained", policy)
		case isExplained:
			source, err := os.ReadFile(filepath.Join(repoRoot, "policies", "builtin", name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			functions := exportCalledFunctions(reason)
			if strings.Contains(reason, "it only creates objects (spec.generate)") {
				// Nothing native creates objects; no function is to blame.
				continue
			}
			if len(functions) == 0 {
				t.Errorf("%s: the explanation names no function: %s", policy, reason)
			}
			for _, function := range functions {
				if !strings.Contains(string(source), function+"(") {
					t.Errorf("%s: the explanation names %s, which the policy does not call: %s", policy, function, reason)
				}
			}
		default:
			exportedAny = true
		}
	}
	for policy := range explanations {
		t.Errorf("stderr explains %s, which is not a built-in policy", policy)
	}
	if exportedAny {
		if out, err := suite.kubectl("apply", "--dry-run=server", "-f", exportTempFile(t, native)); err != nil {
			t.Errorf("the API server does not accept the exported built-in policies: %v\n%s", err, out)
		}
	}
}

// TestExportedBuiltinPoliciesMutateLikeTheEngine exports the built-in
// policies (those that call only the pure doris-admission functions, which
// export inlines), applies the native MutatingAdmissionPolicies with their
// settings ConfigMap, creates the plain FE StatefulSet of
// deploy/examples/seed-fe-plain.yaml with kubectl create --dry-run=server in
// kube-system, which doris-admission's webhooks never see, and checks that
// the API server mutates it exactly as doris-admission mutate does with the
// same policies alone: grace period, probes, lifecycle hooks, init
// containers, volumes and mounts, compared after the API server's defaults.
func TestExportedBuiltinPoliciesMutateLikeTheEngine(t *testing.T) {
	requireNativeAdmissionPolicies(t)
	exported, explained, err := exportRun(suite.serverBin, "policy", "export", "--builtin")
	if err != nil {
		t.Fatalf("policy export --builtin: %v\n%s", err, explained)
	}
	docs := exportDocuments(t, exported)
	var policies []string
	for _, doc := range docs {
		if doc["kind"] == "MutatingAdmissionPolicy" {
			policies = append(policies, exportString(doc, "metadata", "name"))
		}
	}
	want := []string{"doris-agent", "doris-conf", "doris-fe-start", "doris-grace-period", "doris-hooks", "doris-probes"}
	if !cmp.Equal(policies, want) {
		t.Fatalf("exported the MutatingAdmissionPolicies %q, want %q; stderr:\n%s", policies, want, explained)
	}
	// The built-in policies read their settings from a ConfigMap in
	// doris-admission's namespace; here it is kube-system, with every key, as
	// the export's note asks, since the API server fills in none.
	for _, doc := range docs {
		if doc["kind"] == "MutatingAdmissionPolicyBinding" && exportString(doc, "spec", "paramRef", "name") != "" {
			doc["spec"].(map[string]any)["paramRef"].(map[string]any)["namespace"] = exportNamespace
		}
	}
	var native strings.Builder
	for _, doc := range docs {
		data, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		native.WriteString("---\n")
		native.Write(data)
	}
	settings, err := os.ReadFile(filepath.Join(repoRoot, "policies", "builtin", "settings", "settings.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	settingsFile := exportTempFile(t, strings.Replace(string(settings), "namespace: doris-admission", "namespace: "+exportNamespace, 1))

	// The FE, in kube-system; mutated by doris-admission offline, with the
	// built-in policies that are not exported turned off.
	fe := exportTempFile(t, exportSeedFE(t))
	var notExported []string
	for _, line := range strings.Split(strings.TrimSpace(explained), "\n") {
		if policy, _, ok := strings.Cut(line, ": not exported: "); ok {
			notExported = append(notExported, strings.Fields(policy)[1])
		}
	}
	mutated, stderr, err := exportRun(suite.serverBin, "mutate", "-f", fe, "--disable-builtin", strings.Join(notExported, ","))
	if err != nil {
		t.Fatalf("doris-admission mutate: %v\n%s", err, stderr)
	}
	// The API server's defaults, for what doris-admission added, before any
	// native policy is in force: then nothing else changes the object.
	engineObject := exportDryRun(t, exportTempFile(t, mutated))
	before := exportDryRun(t, fe)
	if cmp.Equal(exportSpec(t, before), exportSpec(t, engineObject)) {
		t.Fatalf("doris-admission mutate changed nothing:\n%s", mutated)
	}

	if out, err := suite.kubectl("apply", "-f", settingsFile); err != nil {
		t.Fatalf("applying the settings: %v\n%s", err, out)
	}
	nativeFile := exportTempFile(t, native.String())
	if out, err := suite.kubectl("apply", "-f", nativeFile); err != nil {
		t.Fatalf("applying the exported policies: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := suite.kubectl("delete", "-f", nativeFile, "--ignore-not-found"); err != nil {
			t.Errorf("deleting the exported policies: %v\n%s", err, out)
		}
		// The API server drops them asynchronously: wait, so later tests
		// do not meet them.
		eventually(t, time.Minute, func() string {
			if after := exportDryRun(t, fe); !cmp.Equal(exportSpec(t, after), exportSpec(t, before)) {
				return "the exported policies still mutate the FE"
			}
			return ""
		})
		suite.kubectl("delete", "-f", settingsFile, "--ignore-not-found")
	})

	// The API server loads the policies asynchronously: wait until each one
	// has done its part.
	var nativeObject map[string]any
	eventually(t, time.Minute, func() string {
		nativeObject = exportDryRun(t, fe)
		pod := exportPod(t, nativeObject)
		container := pod["containers"].([]any)[0].(map[string]any)
		var initContainers []string
		for _, c := range exportList(pod["initContainers"]) {
			initContainers = append(initContainers, c.(map[string]any)["name"].(string))
		}
		inForce := map[string]bool{
			"doris-grace-period": pod["terminationGracePeriodSeconds"] != float64(30),
			"doris-agent":        slices.Contains(initContainers, "doris-admission-agent"),
			"doris-conf":         slices.Contains(initContainers, "doris-admission-conf"),
			"doris-hooks":        container["lifecycle"] != nil,
			"doris-probes":       container["startupProbe"] != nil,
		}
		for policy, done := range inForce {
			if !done {
				return fmt.Sprintf("%s is not in force yet: %v", policy, inForce)
			}
		}
		return ""
	})

	ours, theirs := exportPod(t, engineObject), exportPod(t, nativeObject)
	ourContainer, theirContainer := ours["containers"].([]any)[0].(map[string]any), theirs["containers"].([]any)[0].(map[string]any)
	for _, field := range []struct {
		name         string
		ours, theirs any
	}{
		{"terminationGracePeriodSeconds", ours["terminationGracePeriodSeconds"], theirs["terminationGracePeriodSeconds"]},
		{"initContainers", ours["initContainers"], theirs["initContainers"]},
		{"volumes", ours["volumes"], theirs["volumes"]},
		{"the FE container's volumeMounts", ourContainer["volumeMounts"], theirContainer["volumeMounts"]},
		{"the FE container's lifecycle", ourContainer["lifecycle"], theirContainer["lifecycle"]},
		{"the FE container's startupProbe", ourContainer["startupProbe"], theirContainer["startupProbe"]},
		{"the FE container's livenessProbe", ourContainer["livenessProbe"], theirContainer["livenessProbe"]},
		{"the FE container's readinessProbe", ourContainer["readinessProbe"], theirContainer["readinessProbe"]},
	} {
		if diff := cmp.Diff(field.ours, field.theirs, anyOrder); diff != "" {
			t.Errorf("%s (-doris-admission +native):\n%s", field.name, diff)
		}
	}
	// And nothing else differs either.
	if diff := cmp.Diff(exportSpec(t, engineObject), exportSpec(t, nativeObject), anyOrder); diff != "" {
		t.Errorf("the StatefulSet's spec (-doris-admission +native):\n%s", diff)
	}
}

// exportSeedFE is the StatefulSet of deploy/examples/seed-fe-plain.yaml, in
// exportNamespace.
func exportSeedFE(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "examples", "seed-fe-plain.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range exportDocuments(t, string(data)) {
		if doc["kind"] == "StatefulSet" {
			doc["metadata"].(map[string]any)["namespace"] = exportNamespace
			out, err := yaml.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			return string(out)
		}
	}
	t.Fatal("deploy/examples/seed-fe-plain.yaml has no StatefulSet")
	return ""
}

// exportDocuments are the YAML documents of a stream.
func exportDocuments(t *testing.T, text string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(text, -1) {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("reading YAML: %v\n%s", err, doc)
		}
		if obj != nil {
			out = append(out, obj)
		}
	}
	return out
}

// exportDryRun creates the object of file with kubectl create
// --dry-run=server and returns what the API server would store.
func exportDryRun(t *testing.T, file string) map[string]any {
	t.Helper()
	stdout, stderr, err := exportRun(suite.kubectlBin, "--kubeconfig", suite.kubeconfig, "create", "--dry-run=server", "-o", "yaml", "-f", file)
	if err != nil {
		t.Fatalf("kubectl create --dry-run=server: %v\n%s", err, stderr)
	}
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(stdout), &obj); err != nil {
		t.Fatalf("reading the object: %v\n%s", err, stdout)
	}
	return obj
}

func exportSpec(t *testing.T, obj map[string]any) map[string]any {
	t.Helper()
	spec, ok := obj["spec"].(map[string]any)
	if !ok {
		t.Fatalf("the object has no spec: %v", obj)
	}
	return spec
}

// exportPod is the pod template's spec of a StatefulSet.
func exportPod(t *testing.T, obj map[string]any) map[string]any {
	t.Helper()
	template, _ := exportSpec(t, obj)["template"].(map[string]any)
	pod, ok := template["spec"].(map[string]any)
	if !ok {
		t.Fatalf("the object has no pod template: %v", obj)
	}
	return pod
}

func exportList(v any) []any {
	list, _ := v.([]any)
	return list
}

// exportString is the string at a path of obj, or "".
func exportString(obj map[string]any, path ...string) string {
	var cur any = obj
	for _, key := range path {
		m, _ := cur.(map[string]any)
		cur = m[key]
	}
	s, _ := cur.(string)
	return s
}

// requireNativeAdmissionPolicies fails unless the API server serves the
// admissionregistration.k8s.io/v1 admission policies and bindings.
func requireNativeAdmissionPolicies(t *testing.T) {
	t.Helper()
	out, err := suite.kubectl("api-resources", "--api-group=admissionregistration.k8s.io", "--no-headers")
	if err != nil {
		t.Fatalf("kubectl api-resources: %v\n%s", err, out)
	}
	for _, resource := range []string{"mutatingadmissionpolicies", "mutatingadmissionpolicybindings", "validatingadmissionpolicies", "validatingadmissionpolicybindings"} {
		served := slices.ContainsFunc(strings.Split(out, "\n"), func(line string) bool {
			fields := strings.Fields(line)
			return len(fields) >= 3 && fields[0] == resource && slices.Contains(fields, "admissionregistration.k8s.io/v1")
		})
		if !served {
			t.Fatalf("the API server does not serve %s in admissionregistration.k8s.io/v1 (it needs --runtime-config and the feature gate):\n%s", resource, out)
		}
	}
}

// nativePolicyProbes are two Deployments that tell whether the exported
// example policies are in force: one of 7 replicas, which max-replicas
// denies, and one without labels, which owner-label warns about and
// team-label labels.
type nativePolicyProbes struct {
	tooMany, unlabelled string
}

func newNativePolicyProbes(t *testing.T) nativePolicyProbes {
	t.Helper()
	return nativePolicyProbes{
		tooMany:    exportTempFile(t, exportFixture("probe-too-many", 7, map[string]string{"owner": "e2e", "team": "e2e"})),
		unlabelled: exportTempFile(t, exportFixture("probe-unlabelled", 1, nil)),
	}
}

// wait polls until the native policies are all in force (or, with inForce
// false, none of them is): the API server loads and drops them
// asynchronously.
func (p nativePolicyProbes) wait(t *testing.T, inForce bool) {
	t.Helper()
	eventually(t, time.Minute, func() string {
		denied := exportNativeVerdict(t, p.tooMany)
		admitted := exportNativeVerdict(t, p.unlabelled)
		state := map[string]bool{
			"max-replicas denies": denied.denied && denied.failures["deny max-replicas"] != "",
			"owner-label warns":   admitted.failures["warn owner-label"] != "",
			"team-label labels":   admitted.labels["team"] == "platform",
		}
		for _, is := range state {
			if is != inForce {
				return fmt.Sprintf("the native policies are not all %s: %v\n%s\n%s", map[bool]string{true: "in force", false: "gone"}[inForce], state, denied.output, admitted.output)
			}
		}
		return ""
	})
}

// exportFixture is a Deployment in exportNamespace.
func exportFixture(name string, replicas int, labels map[string]string) string {
	obj := map[string]any{
		"apiVersion": "apps/v1",
		"kind":       "Deployment",
		"metadata":   map[string]any{"name": name, "namespace": exportNamespace},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": "nginx"}}},
			},
		},
	}
	if replicas > 0 {
		obj["spec"].(map[string]any)["replicas"] = replicas
	}
	if labels != nil {
		obj["metadata"].(map[string]any)["labels"] = labels
	}
	data, err := yaml.Marshal(obj)
	if err != nil {
		panic(err)
	}
	return string(data)
}

// exportVerdict is what admission did with one Deployment.
type exportVerdict struct {
	denied bool
	// failures maps "deny <policy>" or "warn <policy>" to the message.
	failures map[string]string
	// labels are the Deployment's labels after mutation.
	labels map[string]string
	output string
}

func (v exportVerdict) policies() []string {
	var keys []string
	for key := range v.failures {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}

// exportEngineLine is a line of doris-admission validate:
// [Warning: ]<Kind> <namespace>/<name>: <field>: <message> (policy <name>).
var exportEngineLine = regexp.MustCompile(`^(Warning: )?Deployment [^ ]+: (.*) \(policy ([^)]+)\)$`)

// exportEngineVerdict runs doris-admission validate and mutate offline on file.
func exportEngineVerdict(t *testing.T, file, policyDir string) exportVerdict {
	t.Helper()
	v := exportVerdict{failures: map[string]string{}}
	stdout, stderr, err := exportRun(suite.serverBin, "validate", "-f", file, "--policies", policyDir)
	v.output = stdout + stderr
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok || stderr != "" {
			t.Fatalf("doris-admission validate: %v\n%s", err, v.output)
		}
		v.denied = true
	}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if line == "" {
			continue
		}
		m := exportEngineLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("doris-admission validate printed %q", line)
		}
		action := "deny"
		if m[1] != "" {
			action = "warn"
		}
		v.failures[action+" "+m[3]] = m[2]
	}
	mutated, stderr, err := exportRun(suite.serverBin, "mutate", "-f", file, "--policies", policyDir)
	if err != nil {
		t.Fatalf("doris-admission mutate: %v\n%s", err, stderr)
	}
	v.labels = exportLabels(t, mutated)
	return v
}

var (
	exportNativeDenial  = regexp.MustCompile(`ValidatingAdmissionPolicy '([^']+)' with binding '[^']+' denied request: (.*)`)
	exportNativeWarning = regexp.MustCompile(`^Warning: Validation failed for ValidatingAdmissionPolicy '([^']+)' with binding '[^']+': (.*)$`)
)

// exportNativeVerdict sends file to the API server with kubectl create
// --dry-run=server: the native policies act on it, nothing is stored.
func exportNativeVerdict(t *testing.T, file string) exportVerdict {
	t.Helper()
	v := exportVerdict{failures: map[string]string{}}
	stdout, stderr, err := exportRun(suite.kubectlBin, "--kubeconfig", suite.kubeconfig, "create", "--dry-run=server", "-o", "yaml", "-f", file)
	v.output = stderr
	for _, line := range strings.Split(stderr, "\n") {
		if m := exportNativeWarning.FindStringSubmatch(line); m != nil {
			v.failures["warn "+m[1]] = m[2]
		} else if m := exportNativeDenial.FindStringSubmatch(line); m != nil {
			v.failures["deny "+m[1]] = m[2]
		}
	}
	if err != nil {
		if !strings.Contains(stderr, "denied request") {
			t.Fatalf("kubectl create --dry-run=server: %v\n%s", err, stderr)
		}
		v.denied = true
		return v
	}
	v.labels = exportLabels(t, stdout)
	return v
}

// exportLabels returns the labels of the one object in the YAML text.
func exportLabels(t *testing.T, text string) map[string]string {
	t.Helper()
	var obj struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal([]byte(strings.TrimPrefix(text, "---\n")), &obj); err != nil {
		t.Fatalf("reading the object: %v\n%s", err, text)
	}
	return obj.Metadata.Labels
}

// exportCalledFunctions are the function names in an explanation: "its
// expressions call a, b, which ..., and c, which ... (first in ...)".
func exportCalledFunctions(reason string) []string {
	_, list, _ := strings.Cut(reason, "its expressions call ")
	list, _, _ = strings.Cut(list, " (first in ")
	var out []string
	for _, part := range strings.Split(list, ", ") {
		part = strings.TrimPrefix(part, "and ")
		if part != "" && !strings.Contains(part, " ") {
			out = append(out, part)
		}
	}
	return out
}

// exportRun runs a program and returns its stdout and stderr.
func exportRun(name string, args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// exportTempFile writes text to a new file in a test folder and returns its path.
func exportTempFile(t *testing.T, text string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// anyOrder compares lists whatever the order of their items: the API server
// applies native admission policies in no fixed order, so two policies that
// both append to a list (volumes, init containers) may do it either way.
var anyOrder = cmpopts.SortSlices(func(a, b any) bool { return fmt.Sprint(a) < fmt.Sprint(b) })
