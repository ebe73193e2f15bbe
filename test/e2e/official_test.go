package e2e

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/doris-admission/doris-admission/agent"
	"github.com/doris-admission/doris-admission/test/node"
)

// TestOfficialClusterKeepsItsNames applies plain StatefulSets of the
// official 2.1.7 images, three FEs and two BEs, with no command (their
// entrypoint starts Doris): the built-ins run them in FQDN mode, with the
// governing Services made for them, and the FEs form one cluster (a master
// and two followers, each later FE added at the master and started with
// --helper). Every pod is deleted in turn and comes back with another IP:
// each is the same member as before, alive, with no entry added, duplicated
// or decommissioned. Scaling the FEs down to one is refused.
func TestOfficialClusterKeepsItsNames(t *testing.T) {
	const ns = "official"
	manifest := node.Namespace(ns)
	for _, claim := range []string{"meta-doris-fe-0", "meta-doris-fe-1", "meta-doris-fe-2"} {
		manifest += "---\n" + hostPathVolume(t, ns, claim)
	}
	manifest += "---\n" + fmt.Sprintf(`
apiVersion: v1
kind: Service
metadata: {name: doris-fe, namespace: %[1]s}
spec:
  selector: {app: doris-fe}
  ports: [{name: query, port: 9030}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: doris-fe, namespace: %[1]s}
spec:
  serviceName: doris-fe-internal
  replicas: 3
  selector: {matchLabels: {app: doris-fe}}
  template:
    metadata: {labels: {app: doris-fe}}
    spec:
      containers:
        - name: fe
          image: apache/doris:fe-2.1.7
          volumeMounts: [{name: meta, mountPath: /opt/apache-doris/fe/doris-meta}]
  volumeClaimTemplates:
    - metadata: {name: meta}
      spec: {accessModes: [ReadWriteOnce], storageClassName: local, resources: {requests: {storage: 1Gi}}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: doris-be, namespace: %[1]s}
spec:
  serviceName: doris-be-internal
  replicas: 2
  selector: {matchLabels: {app: doris-be}}
  template:
    metadata: {labels: {app: doris-be}}
    spec:
      containers: [{name: be, image: apache/doris:be-2.1.7}]
`, ns)
	if out, err := suite.apply(manifest); err != nil {
		t.Fatalf("applying the official StatefulSets: %v\n%s", err, out)
	}
	if out, err := suite.kubectl("apply", "-n", ns, "-f", repoRoot+"/deploy/agent/rbac.yaml"); err != nil {
		t.Fatalf("applying the agent's RBAC: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		suite.kubectl("delete", "pods", "--all", "-n", ns, "--grace-period=5", "--wait=false")
		suite.kubectl("delete", "namespace", ns, "--wait=false")
		suite.kubectl("delete", "persistentvolumes", "-l", "doris-admission.io/e2e="+ns)
	})
	name := func(pod, service string) string { return pod + "." + service + "." + ns + ".svc.cluster.local" }
	fes := []string{name("doris-fe-0", "doris-fe-internal"), name("doris-fe-1", "doris-fe-internal"), name("doris-fe-2", "doris-fe-internal")}
	bes := []string{name("doris-be-0", "doris-be-internal"), name("doris-be-1", "doris-be-internal")}
	pods := []string{"doris-fe-0", "doris-fe-1", "doris-fe-2", "doris-be-0", "doris-be-1"}
	for _, pod := range pods {
		waitReady(t, ns, pod)
	}
	members := func(why string) {
		t.Helper()
		conn, err := agent.Open(agent.Connection{Host: podIP(t, ns, "doris-fe-0"), Port: 9030, User: "root", Timeout: 5 * time.Second}, agent.NewLogger(io.Discard))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		eventually(t, 2*time.Minute, func() string {
			frontends, err := conn.Frontends(context.Background())
			var got []string
			masters := 0
			for _, f := range frontends {
				if !f.Alive || f.Role != "FOLLOWER" {
					return fmt.Sprintf("%s: SHOW FRONTENDS: %+v, want every FE an alive FOLLOWER", why, frontends)
				}
				if f.IsMaster {
					masters++
				}
				got = append(got, f.Host)
			}
			if err != nil || strings.Join(got, ",") != strings.Join(fes, ",") || masters != 1 {
				return fmt.Sprintf("%s: SHOW FRONTENDS: %v %+v, want %v, one of them the master", why, err, frontends, fes)
			}
			backends, err := conn.Backends(context.Background())
			got = nil
			for _, b := range backends {
				if !b.Alive || b.Decommissioned {
					return fmt.Sprintf("%s: SHOW BACKENDS: %+v, want every BE alive and none decommissioned", why, backends)
				}
				got = append(got, b.Host)
			}
			if err != nil || strings.Join(got, ",") != strings.Join(bes, ",") {
				return fmt.Sprintf("%s: SHOW BACKENDS: %v %v, want %v", why, err, got, bes)
			}
			return ""
		})
	}
	members("first start")
	logs, _ := suite.kubectl("logs", "-n", ns, "doris-fe-1")
	for _, want := range []string{"added this FE (" + fes[1] + ":9010) as FOLLOWER", "starting it with --helper " + fes[0] + ":9010"} {
		if !strings.Contains(logs, want) {
			t.Errorf("kubectl logs doris-fe-1 does not say %q:\n%s", want, logs)
		}
	}
	out, err := suite.kubectl("scale", "-n", ns, "statefulset/doris-fe", "--replicas=1")
	if err == nil || !strings.Contains(out, "fewer than the 3 FOLLOWERs that elect the master of this FE cluster") {
		t.Errorf("scaling the FEs to 1 was not refused with its reason: %v\n%s", err, out)
	}
	for _, pod := range pods {
		old := podIP(t, ns, pod)
		if out, err := suite.kubectl("delete", "-n", ns, "pod/"+pod, "--timeout=120s"); err != nil {
			t.Fatalf("deleting %s: %v\n%s", pod, err, out)
		}
		waitReady(t, ns, pod)
		members(fmt.Sprintf("after %s came back (was %s, is %s)", pod, old, podIP(t, ns, pod)))
	}
}
