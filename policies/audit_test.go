package policies

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestAuditReportsWhatExistingObjectsLack: a plain Doris FE fails every
// built-in mutating policy with what it lacks; once mutated it passes them.
func TestAuditReportsWhatExistingObjectsLack(t *testing.T) {
	docs, err := ReadDocuments("../deploy/examples/seed-fe-plain.yaml", nil)
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
