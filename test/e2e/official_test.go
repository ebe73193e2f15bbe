package e2e

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/doris-admission/doris-admission/agent"
)

// TestOfficialClusterKeepsItsNames applies plain StatefulSets of the
// official 2.1.7 images, three FEs and three BEs, with no command (their
// entrypoint starts Doris): the built-ins run them in FQDN mode, with the
// governing Services made for them, and the FEs form one cluster (a master
// and two followers, each later FE added at the master and started with
// --helper). Every pod is deleted in turn and comes back with another IP:
// each is the same member as before, alive, with no entry added, duplicated
// or decommissioned. Scaling the FEs down to one is refused; a rolling
// update of the BEs decommissions nothing; scaling them from 3 to 2
// decommissions exactly the leaving BE, which drains and is dropped.
func TestOfficialClusterKeepsItsNames(t *testing.T) {
	const ns = "official"
	manifest := nodeNamespace(t, ns, "meta-doris-fe-0", "meta-doris-fe-1", "meta-doris-fe-2", "meta-doris-fe-3")
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
  replicas: 3
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
	name := func(pod, service string) string { return pod + "." + service + "." + ns + ".svc.cluster.local" }
	fes := []string{name("doris-fe-0", "doris-fe-internal"), name("doris-fe-1", "doris-fe-internal"), name("doris-fe-2", "doris-fe-internal")}
	bes := []string{name("doris-be-0", "doris-be-internal"), name("doris-be-1", "doris-be-internal"), name("doris-be-2", "doris-be-internal")}
	pods := []string{"doris-fe-0", "doris-fe-1", "doris-fe-2", "doris-be-0", "doris-be-1", "doris-be-2"}
	for _, pod := range pods {
		waitReady(t, ns, pod)
	}
	// Each BE's ID as at the first start: a BE dropped and added again
	// would have lost its data to the others.
	var placement string
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
			var ids []string
			for _, b := range backends {
				ids = append(ids, b.ID+"="+b.Host)
			}
			if now := strings.Join(ids, ","); placement == "" {
				placement = now
			} else if now != placement && len(backends) == 3 {
				return fmt.Sprintf("%s: SHOW BACKENDS IDs: %s, want those of the first start: %s", why, now, placement)
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
	observerJoinsAndLeaves(t, ns, fes)
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
	master, err := agent.Open(agent.Connection{Host: podIP(t, ns, "doris-fe-0"), Port: 9030, User: "root", Timeout: 5 * time.Second}, agent.NewLogger(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	watch := watchDecommissions(master)
	if out, err := suite.kubectl("rollout", "restart", "-n", ns, "statefulset/doris-be"); err != nil {
		t.Fatalf("kubectl rollout restart: %v\n%s", err, out)
	}
	if out, err := suite.kubectl("rollout", "status", "-n", ns, "statefulset/doris-be", "--timeout=240s"); err != nil {
		t.Fatalf("the rollout did not finish: %v\n%s", err, out)
	}
	members("after a rolling update of the BEs")
	if seen := watch(); len(seen) != 0 {
		t.Errorf("a rolling update decommissioned %v", seen)
	}
	watch = watchDecommissions(master)
	if out, err := suite.kubectl("scale", "-n", ns, "statefulset/doris-be", "--replicas=2"); err != nil {
		t.Fatalf("kubectl scale: %v\n%s", err, out)
	}
	if out, err := suite.kubectl("wait", "-n", ns, "pod/doris-be-2", "--for=delete", "--timeout=180s"); err != nil {
		t.Fatalf("doris-be-2 did not go: %v\n%s", err, out)
	}
	bes = bes[:2]
	members("after the BEs were scaled from 3 to 2")
	if seen := watch(); len(seen) != 1 || seen[0] != name("doris-be-2", "doris-be-internal") {
		t.Errorf("decommissioned: %v, want only the leaving BE doris-be-2", seen)
	}
}

// observerJoinsAndLeaves scales the FEs from 3 to 4: the fourth joins as an
// OBSERVER, beyond the 3 followers; then back to 3: its preStop hook drops
// exactly its entry.
func observerJoinsAndLeaves(t *testing.T, ns string, fes []string) {
	t.Helper()
	observer := "doris-fe-3.doris-fe-internal." + ns + ".svc.cluster.local"
	if out, err := suite.kubectl("scale", "-n", ns, "statefulset/doris-fe", "--replicas=4"); err != nil {
		t.Fatalf("scaling the FEs to 4: %v\n%s", err, out)
	}
	waitReady(t, ns, "doris-fe-3")
	conn, err := agent.Open(agent.Connection{Host: podIP(t, ns, "doris-fe-0"), Port: 9030, User: "root", Timeout: 5 * time.Second}, agent.NewLogger(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	roles := func() string {
		frontends, err := conn.Frontends(context.Background())
		var out []string
		for _, f := range frontends {
			out = append(out, f.Host+"="+f.Role)
		}
		return fmt.Sprint(err, out)
	}
	followers := []string{fes[0] + "=FOLLOWER", fes[1] + "=FOLLOWER", fes[2] + "=FOLLOWER"}
	eventually(t, time.Minute, func() string {
		if got, want := roles(), fmt.Sprint(nil, append(followers, observer+"=OBSERVER")); got != want {
			return "SHOW FRONTENDS after the scale-up: " + got + ", want " + want
		}
		return ""
	})
	if out, err := suite.kubectl("scale", "-n", ns, "statefulset/doris-fe", "--replicas=3"); err != nil {
		t.Fatalf("scaling the FEs back to 3: %v\n%s", err, out)
	}
	if out, err := suite.kubectl("wait", "-n", ns, "pod/doris-fe-3", "--for=delete", "--timeout=120s"); err != nil {
		t.Fatalf("doris-fe-3 did not go: %v\n%s", err, out)
	}
	if got, want := roles(), fmt.Sprint(nil, followers); got != want {
		t.Errorf("SHOW FRONTENDS after the scale-down: %s, want %s: only the leaving FE's entry dropped", got, want)
	}
}
