package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestSeedStatefulSetsBecomeWorkingOnes applies the plain seed FE and BE and
// checks that what the API server stores has what the seed added by hand,
// that a second apply changes nothing, and that other StatefulSets are
// stored exactly as applied.
func TestSeedStatefulSetsBecomeWorkingOnes(t *testing.T) {
	examples := filepath.Join(repoRoot, "deploy", "examples")
	for _, file := range []string{"seed-fe-plain.yaml", "seed-be-plain.yaml"} {
		path := filepath.Join(examples, file)
		if out, err := suite.kubectl("apply", "-f", path); err != nil {
			t.Fatalf("kubectl apply -f %s: %v\n%s", file, err, out)
		}
		t.Cleanup(func() { suite.kubectl("delete", "-f", path, "--ignore-not-found") })
	}

	for name, want := range map[string][]string{
		"doris-fe": {"name: FE_IPADDRESS", "fieldPath: status.podIP", "name: FE_EDIT_PORT", "name: doris-admission-agent", "name: doris-admission-conf",
			"mountPath: /opt/apache-doris/fe/conf", "- fe-register", "- fe-stop", "startupProbe:", "port: 9030", "path: /api/health", "port: 8030",
			"terminationGracePeriodSeconds: 120", "- --ip-variable\n        - FE_IPADDRESS"},
		"doris-be": {"name: BE_IPADDRESS", "value: doris-fe.default.svc.cluster.local", "name: FE_MASTER_PORT", "- be-register", "- be-decommission",
			"port: 9050", "port: 8040", "terminationGracePeriodSeconds: 3600", "mountPath: /opt/apache-doris/be/conf"},
	} {
		stored, err := suite.kubectl("get", "statefulset", name, "-o", "yaml")
		if err != nil {
			t.Fatalf("kubectl get statefulset %s: %v\n%s", name, err, stored)
		}
		for _, w := range want {
			if !strings.Contains(stored, w) {
				t.Errorf("the stored %s lacks %q:\n%s", name, w, stored)
			}
		}
	}

	// kubectl reports a StatefulSet with volumeClaimTemplates as "configured"
	// on every apply (it resends the templates); what must not change is the
	// pod template, which would roll the pods, and so the generation.
	state := `jsonpath={range .items[*]}{.metadata.generation} {.spec.template}{"\n"}{end}`
	before, err := suite.kubectl("get", "statefulset", "doris-fe", "doris-be", "-o", state)
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"seed-fe-plain.yaml", "seed-be-plain.yaml"} {
		if out, err := suite.kubectl("apply", "-f", filepath.Join(examples, file)); err != nil {
			t.Fatalf("re-applying %s: %v\n%s", file, err, out)
		}
	}
	after, _ := suite.kubectl("get", "statefulset", "doris-fe", "doris-be", "-o", state)
	if before != after {
		t.Errorf("re-applying the unchanged manifests changed the stored StatefulSets:\nbefore: %s\nafter:  %s", before, after)
	}
}

// TestOtherStatefulSetsAreStoredAsApplied applies a StatefulSet that is not
// Doris and checks the webhook added nothing.
func TestOtherStatefulSetsAreStoredAsApplied(t *testing.T) {
	out, err := suite.apply(`
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: postgres, namespace: default}
spec:
  serviceName: postgres
  selector: {matchLabels: {app: postgres}}
  template:
    metadata: {labels: {app: postgres}}
    spec:
      containers: [{name: postgres, image: "postgres:17"}]
`)
	if err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "statefulset", "postgres") })
	stored, err := suite.kubectl("get", "statefulset", "postgres", "-o", "jsonpath={.spec.template.spec}")
	if err != nil {
		t.Fatal(err)
	}
	for _, injected := range []string{"initContainers", "volumes", "env", "lifecycle", "Probe", "doris"} {
		if strings.Contains(stored, injected) {
			t.Errorf("the stored pod template of a non-Doris StatefulSet has %q: %s", injected, stored)
		}
	}
	if !strings.Contains(stored, `"terminationGracePeriodSeconds":30`) {
		t.Errorf("the grace period is not the API server's default: %s", stored)
	}
}
