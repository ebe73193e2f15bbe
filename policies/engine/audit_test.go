package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/doris-admission/doris-admission/policies"
)

// TestAuditReportsWhatExistingObjectsLack: a plain Doris FE fails every
// built-in mutating policy with what it lacks; once mutated it passes them.
func TestAuditReportsWhatExistingObjectsLack(t *testing.T) {
	docs, err := policies.ReadDocuments("../../deploy/examples/seed-fe-plain.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := builtinEngine(t, docs...)
	plain := docs[1].Object
	results, err := e.Audit(context.Background(), plain)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range results {
		got[r.Policy] = r.Result
		if want := `lacks what the policy adds (spec.template.spec.containers[0].env). Admission cannot change a stored object: update it to have it added, e.g. kubectl annotate statefulset doris-fe -n default doris-admission.io/reconcile="$(date +%s)" --overwrite (its pods then restart one by one)`; r.Policy == "doris-env" && r.Message != want {
			t.Errorf("doris-env message = %q", r.Message)
		}
	}
	want := map[string]string{
		"doris-agent": ResultFail, "doris-conf": ResultFail, "doris-env": ResultFail, "doris-grace-period": ResultFail,
		"doris-hooks": ResultFail, "doris-probes": ResultFail, "doris-fe-start": ResultFail,
		// Judged as an update that changes nothing: replicas stay.
		"doris-fe-quorum": ResultPass,
		// The seed's Doris 1.2.4.1 FE runs in IP mode.
		"doris-checks": ResultWarn,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results for the plain FE (-want +got):\n%s", diff)
	}

	mutated := mutateObject(t, e, plain)
	results, err = e.Audit(context.Background(), mutated)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Result != ResultPass && (r.Policy != "doris-checks" || !strings.Contains(r.Message, "this FE runs in IP mode")) {
			t.Errorf("the mutated FE: %s %s: %s", r.Policy, r.Result, r.Message)
		}
	}
}

// A Doris 2.x FE StatefulSet that runs in IP mode (stored without what FQDN
// mode adds) is reported with the procedure to move it, not taken for a
// new StatefulSet that would start in FQDN mode.
func TestAuditReportsAnIPModeCluster(t *testing.T) {
	fe := object(t, `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: lake-fe, namespace: db, uid: 4a1e}
spec:
  serviceName: lake-fe-internal
  selector: {matchLabels: {app: lake-fe}}
  template:
    metadata: {labels: {app: lake-fe}}
    spec:
      containers: [{name: fe, image: "apache/doris:fe-2.1.7", env: [{name: FE_IPADDRESS, value: x}]}]
`)
	results, err := builtinEngine(t).Audit(context.Background(), fe)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Policy == "doris-checks" {
			if r.Result != ResultWarn || !strings.Contains(r.Message, `it ran in IP mode before, and an apply does not move a cluster to FQDN mode: follow "Moving a cluster to FQDN mode"`) {
				t.Errorf("doris-checks: %s %s, want the IP-mode warning with the procedure", r.Result, r.Message)
			}
			return
		}
	}
	t.Errorf("doris-checks gave no result: %+v", results)
}
