package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// doris-governing-service makes the headless Service a Doris StatefulSet's
// serviceName names, owned by the StatefulSet; a Service that exists is
// never touched, the opt-out is honoured, and the Service goes with the
// StatefulSet.
func TestGoverningServiceIsGenerated(t *testing.T) {
	const ns = "governing"
	statefulSet := func(name, serviceName, annotations string) string {
		return fmt.Sprintf(`
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: %[1]s, namespace: %[4]s, annotations: {%[3]s}}
spec:
  serviceName: %[2]s
  replicas: 1
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      containers: [{name: be, image: "apache/doris:be-2.1.7"}]
`, name, serviceName, annotations, ns)
	}
	manifest := "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + ns + "}\n---\n" + `
apiVersion: v1
kind: Service
metadata: {name: taken, namespace: governing}
spec:
  selector: {app: someone-else}
  ports: [{port: 80}]
---` + statefulSet("lake-be", "lake-be-internal", "") + "---" +
		statefulSet("other-be", "taken", "") + "---" +
		statefulSet("own-be", "own-be-internal", `doris.apache.org/governing-service: "false"`)
	if out, err := suite.apply(manifest); err != nil {
		t.Fatalf("applying: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "namespace", ns, "--wait=false") })
	taken, _ := suite.kubectl("get", "-n", ns, "service/taken", "-o", "jsonpath={.metadata.resourceVersion}")

	var service string
	eventually(t, 30*time.Second, func() string {
		var err error
		service, err = suite.kubectl("get", "-n", ns, "service/lake-be-internal", "-o",
			`jsonpath={.spec.clusterIP} {.spec.publishNotReadyAddresses} {.spec.selector.app} {range .spec.ports[*]}{.name}={.port},{end} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}`)
		if err != nil {
			return "the governing Service lake-be-internal does not exist: " + service
		}
		return ""
	})
	want := "None true lake-be be-port=9060,webserver-port=8040,heartbeat-port=9050,brpc-port=8060, StatefulSet/lake-be"
	if service != want {
		t.Errorf("the governing Service is %q, want %q", service, want)
	}
	// One worker takes the StatefulSets in the order they came: once one
	// applied after the others has its Service, the others were evaluated.
	if out, err := suite.apply(statefulSet("last-be", "last-be-internal", "")); err != nil {
		t.Fatalf("applying: %v\n%s", err, out)
	}
	eventually(t, 30*time.Second, func() string {
		if out, err := suite.kubectl("get", "-n", ns, "service/last-be-internal"); err != nil {
			return "the governing Service last-be-internal does not exist: " + out
		}
		return ""
	})
	if after, _ := suite.kubectl("get", "-n", ns, "service/taken", "-o", "jsonpath={.metadata.resourceVersion}"); after != taken {
		t.Errorf("the existing Service taken was changed (resourceVersion %s, then %s)", taken, after)
	}
	if out, err := suite.kubectl("get", "-n", ns, "service/own-be-internal"); err == nil {
		t.Errorf("a StatefulSet that opted out got a Service: %s", out)
	}
	if out, err := suite.kubectl("delete", "-n", ns, "statefulset/lake-be"); err != nil {
		t.Fatalf("deleting the StatefulSet: %v\n%s", err, out)
	}
	eventually(t, time.Minute, func() string {
		if out, err := suite.kubectl("get", "-n", ns, "service/lake-be-internal"); err == nil || !strings.Contains(out, "NotFound") {
			return "the governing Service outlived its StatefulSet: " + out
		}
		return ""
	})
}
