package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/doris-admission/doris-admission/agent"
)

// podLife runs the moments of a Doris cluster's life after its first
// start, on the seed cluster in ns, checking membership through fe (the
// master, by the FE's NodePort): a second FE joined by hand as the Doris
// docs say, a BE scale-down, a BE pod recreated, a rolling update.
func podLife(t *testing.T, ns string, fe *agent.FE) {
	t.Run("a follower joins through --helper and forwards statements to the master", func(t *testing.T) {
		followerJoins(t, ns, fe)
	})
	t.Run("a scale-down decommissions exactly the leaving BE", func(t *testing.T) {
		leaving := podIP(t, ns, "doris-be-2")
		watch := watchDecommissions(fe)
		if out, err := suite.kubectl("scale", "-n", ns, "statefulset/doris-be", "--replicas=2"); err != nil {
			t.Fatalf("kubectl scale: %v\n%s", err, out)
		}
		if out, err := suite.kubectl("wait", "-n", ns, "pod/doris-be-2", "--for=delete", "--timeout=180s"); err != nil {
			t.Fatalf("doris-be-2 did not go: %v\n%s", err, out)
		}
		backends := aliveBackends(t, fe, ns, "doris-be-0", "doris-be-1")
		for _, b := range backends {
			if b.Host == leaving {
				t.Errorf("the leaving BE %s is still a member: %+v", leaving, backends)
			}
		}
		if seen := watch(); len(seen) != 1 || seen[0] != leaving {
			t.Errorf("decommissioned: %v, want only the leaving BE %s", seen, leaving)
		}
	})
	t.Run("a recreated BE pod registers again and nothing is decommissioned", func(t *testing.T) {
		old := podIP(t, ns, "doris-be-1")
		watch := watchDecommissions(fe)
		if out, err := suite.kubectl("delete", "-n", ns, "pod/doris-be-1", "--timeout=120s"); err != nil {
			t.Fatalf("deleting doris-be-1: %v\n%s", err, out)
		}
		waitReady(t, ns, "doris-be-1")
		aliveBackends(t, fe, ns, "doris-be-0", "doris-be-1")
		if seen := watch(); len(seen) != 0 {
			t.Errorf("a restart decommissioned %v", seen)
		}
		logs, _ := suite.kubectl("logs", "-n", ns, "doris-be-1")
		t.Logf("doris-be-1 was %s, is %s; its log:\n%s", old, podIP(t, ns, "doris-be-1"), logs)
	})
	t.Run("a rolling update decommissions nothing", func(t *testing.T) {
		watch := watchDecommissions(fe)
		if out, err := suite.kubectl("rollout", "restart", "-n", ns, "statefulset/doris-be"); err != nil {
			t.Fatalf("kubectl rollout restart: %v\n%s", err, out)
		}
		if out, err := suite.kubectl("rollout", "status", "-n", ns, "statefulset/doris-be", "--timeout=240s"); err != nil {
			t.Fatalf("the rollout did not finish: %v\n%s", err, out)
		}
		aliveBackends(t, fe, ns, "doris-be-0", "doris-be-1")
		if seen := watch(); len(seen) != 0 {
			t.Errorf("a rolling update decommissioned %v", seen)
		}
	})
}

// followerJoins starts a second FE with --helper naming the first, adds it
// at the master with the image's mysql client, and checks it joins, replays
// the cluster and forwards what changes it to the master.
func followerJoins(t *testing.T, ns string, fe *agent.FE) {
	if out, err := suite.apply(fmt.Sprintf(`
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: doris-fe-follower, namespace: %[1]s}
spec:
  serviceName: doris-fe-follower
  replicas: 1
  selector: {matchLabels: {app: doris-fe-follower}}
  template:
    metadata: {labels: {app: doris-fe-follower}}
    spec:
      containers:
        - name: doris-fe
          image: %[2]sfe
          command: ["/bin/bash", "-ce", "/opt/apache-doris/fe/bin/start_fe.sh --daemon --helper doris-fe.%[1]s.svc.cluster.local:9010; tail -f /dev/null"]
          ports: [{containerPort: 9030}, {containerPort: 9010}]
`, ns, seedImage)); err != nil {
		t.Fatalf("applying the follower: %v\n%s", err, out)
	}
	var ip string
	eventually(t, time.Minute, func() string {
		ip, _ = suite.kubectl("get", "-n", ns, "pod/doris-fe-follower-0", "-o", "jsonpath={.status.podIP}")
		return map[bool]string{true: "the follower pod has no IP yet"}[ip == ""]
	})
	// Until the master adds it, the follower waits (its hook with it).
	eventually(t, time.Minute, func() string {
		logs, _ := suite.kubectl("exec", "-n", ns, "doris-fe-follower-0", "-c", "doris-fe", "--", "cat", "/opt/apache-doris/fe/log/fe.out")
		return map[bool]string{false: "the follower does not say it waits to be added:\n" + logs}[strings.Contains(logs, "please add it first")]
	})
	add := fmt.Sprintf(`ALTER SYSTEM ADD FOLLOWER "%s:9010"`, ip)
	if out, err := suite.kubectl("exec", "-n", ns, "doris-fe-0", "-c", "doris-fe", "--", "mysql", "-uroot", "-P9030", "-h127.0.0.1", "-e", add); err != nil {
		t.Fatalf("%s at the master: %v\n%s", add, err, out)
	}
	waitReady(t, ns, "doris-fe-follower-0")
	eventually(t, time.Minute, func() string {
		frontends, err := fe.Frontends(context.Background())
		if err != nil || len(frontends) != 2 || !frontends[0].Alive || !frontends[1].Alive {
			return fmt.Sprintf("SHOW FRONTENDS at the master: %v %+v, want the master and the follower, alive", err, frontends)
		}
		return ""
	})
	// A statement sent to the follower is carried out by the master.
	observer := `ALTER SYSTEM ADD OBSERVER "192.0.2.250:9010"`
	if out, err := suite.kubectl("exec", "-n", ns, "doris-fe-follower-0", "-c", "doris-fe", "--", "mysql", "-uroot", "-P9030", "-h127.0.0.1", "-e", observer); err != nil {
		t.Fatalf("%s at the follower: %v\n%s", observer, err, out)
	}
	frontends, err := fe.Frontends(context.Background())
	if err != nil || len(frontends) != 3 {
		t.Errorf("SHOW FRONTENDS at the master after a statement at the follower: %v %+v, want the observer added", err, frontends)
	}
	drop := `ALTER SYSTEM DROP OBSERVER "192.0.2.250:9010"`
	if out, err := suite.kubectl("exec", "-n", ns, "doris-fe-follower-0", "-c", "doris-fe", "--", "mysql", "-uroot", "-P9030", "-h127.0.0.1", "-e", drop); err != nil {
		t.Fatalf("%s at the follower: %v\n%s", drop, err, out)
	}
	logs, _ := suite.kubectl("logs", "-n", ns, "doris-fe-follower-0")
	if !strings.Contains(logs, "is a member of the cluster") {
		t.Errorf("the follower's fe-register does not say it found the FE a member:\n%s", logs)
	}
}

// watchDecommissions polls SHOW BACKENDS until the returned function is
// called, and returns the hosts it saw decommissioned.
func watchDecommissions(fe *agent.FE) func() []string {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []string)
	go func() {
		seen := map[string]bool{}
		var hosts []string
		for ctx.Err() == nil {
			backends, _ := fe.Backends(ctx)
			for _, b := range backends {
				if b.Decommissioned && !seen[b.Host] {
					seen[b.Host] = true
					hosts = append(hosts, b.Host)
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		done <- hosts
	}()
	return func() []string {
		cancel()
		return <-done
	}
}

// aliveBackends waits until every pod's address is an alive backend, and
// returns SHOW BACKENDS.
func aliveBackends(t *testing.T, fe *agent.FE, ns string, pods ...string) []agent.Backend {
	t.Helper()
	var backends []agent.Backend
	eventually(t, 2*time.Minute, func() string {
		var err error
		backends, err = fe.Backends(context.Background())
		alive := map[string]bool{}
		for _, b := range backends {
			alive[b.Host] = b.Alive
		}
		for _, pod := range pods {
			if ip := podIP(t, ns, pod); !alive[ip] {
				return fmt.Sprintf("%s (%s) is not an alive backend: %v %+v", pod, ip, err, backends)
			}
		}
		return ""
	})
	return backends
}

func podIP(t *testing.T, ns, pod string) string {
	t.Helper()
	ip, err := suite.kubectl("get", "-n", ns, "pod/"+pod, "-o", "jsonpath={.status.podIP}")
	if err != nil {
		t.Fatalf("the address of %s: %v\n%s", pod, err, ip)
	}
	return strings.TrimSpace(ip)
}

func waitReady(t *testing.T, ns, pod string) {
	t.Helper()
	// A StatefulSet's controller creates its pods after the apply returns,
	// and kubectl wait --for=condition fails at once on a pod not there yet.
	for _, condition := range []string{"--for=create", "--for=condition=Ready"} {
		if out, err := suite.kubectl("wait", "-n", ns, "pod/"+pod, condition, "--timeout=240s"); err != nil {
			describe, _ := suite.kubectl("describe", "-n", ns, "pod/"+pod)
			logs, _ := suite.kubectl("logs", "-n", ns, pod, "--all-containers")
			t.Fatalf("pod %s is not Ready: %v\n%s\n%s\n%s", pod, err, out, describe, logs)
		}
	}
}
