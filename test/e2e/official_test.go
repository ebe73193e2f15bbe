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
// official 2.1.7 images, with no command (their entrypoint starts Doris):
// the built-ins run them in FQDN mode, with the governing Services made for
// them. A BE pod and then the FE pod are deleted and come back with other
// IPs: each is the same member as before, alive, with no entry added,
// duplicated or decommissioned.
func TestOfficialClusterKeepsItsNames(t *testing.T) {
	const ns = "official"
	manifest := node.Namespace(ns) + "---\n" + hostPathVolume(t, ns, "meta-doris-fe-0") + "---\n" + fmt.Sprintf(`
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
  replicas: 1
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
	fe := "doris-fe-0.doris-fe-internal." + ns + ".svc.cluster.local"
	bes := []string{"doris-be-0.doris-be-internal." + ns + ".svc.cluster.local", "doris-be-1.doris-be-internal." + ns + ".svc.cluster.local"}
	for _, pod := range []string{"doris-fe-0", "doris-be-0", "doris-be-1"} {
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
			if err != nil || len(frontends) != 1 || frontends[0].Host != fe || !frontends[0].Alive {
				return fmt.Sprintf("%s: SHOW FRONTENDS: %v %+v, want %s alone, alive", why, err, frontends, fe)
			}
			backends, err := conn.Backends(context.Background())
			var got []string
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
	logs, _ := suite.kubectl("logs", "-n", ns, "doris-fe-0")
	if !strings.Contains(logs, "this FE ("+fe+":9010) is a member of the cluster") {
		t.Errorf("kubectl logs doris-fe-0 does not say the FE registered by its name:\n%s", logs)
	}
	for _, pod := range []string{"doris-be-1", "doris-fe-0"} {
		old := podIP(t, ns, pod)
		if out, err := suite.kubectl("delete", "-n", ns, "pod/"+pod, "--timeout=120s"); err != nil {
			t.Fatalf("deleting %s: %v\n%s", pod, err, out)
		}
		waitReady(t, ns, pod)
		members(fmt.Sprintf("after %s came back (was %s, is %s)", pod, old, podIP(t, ns, pod)))
	}
}
