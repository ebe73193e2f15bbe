package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doris-admission/doris-admission/agent"
)

// TestSeedFEsFormOneCluster applies the seed's plain FE StatefulSet, whose
// container runs start_fe.sh by an explicit command, with replicas: 3: the
// first FE founds the cluster, the other two are added at the master as
// FOLLOWERs and start with --helper; scaling below the followers is refused.
func TestSeedFEsFormOneCluster(t *testing.T) {
	const ns = "seedfe"
	manifest := nodeNamespace(t, ns, "volume-fe-doris-fe-0", "volume-fe-doris-fe-1", "volume-fe-doris-fe-2")
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "examples", "seed-fe-plain.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The StatefulSet only: its NodePort Service belongs to TestSeedClusterRunsOnTheNode.
	statefulSet := string(data)[strings.Index(string(data), "kind: StatefulSet"):]
	statefulSet = strings.NewReplacer("namespace: default", "namespace: "+ns, "replicas: 1", "replicas: 3").Replace(statefulSet)
	if out, err := suite.apply(manifest + "---\n" + statefulSet); err != nil {
		t.Fatalf("applying the seed's FE with replicas: 3: %v\n%s", err, out)
	}
	pods := []string{"doris-fe-0", "doris-fe-1", "doris-fe-2"}
	var ips []string
	for _, pod := range pods {
		waitReady(t, ns, pod)
		ips = append(ips, podIP(t, ns, pod))
	}
	conn, err := agent.Open(agent.Connection{Host: ips[0], Port: 9030, User: "root", Timeout: 5 * time.Second}, agent.NewLogger(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	eventually(t, time.Minute, func() string {
		frontends, err := conn.Frontends(context.Background())
		var got []string
		for _, f := range frontends {
			got = append(got, fmt.Sprintf("%s=%s alive=%v master=%v", f.Host, f.Role, f.Alive, f.IsMaster))
		}
		want := []string{ips[0] + "=FOLLOWER alive=true master=true", ips[1] + "=FOLLOWER alive=true master=false", ips[2] + "=FOLLOWER alive=true master=false"}
		if err != nil || strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Sprintf("SHOW FRONTENDS at doris-fe-0: %v %v, want %v", err, got, want)
		}
		return ""
	})
	for i, pod := range pods[1:] {
		logs, _ := suite.kubectl("logs", "-n", ns, pod)
		want := fmt.Sprintf("added this FE (%s:9010) as FOLLOWER", ips[i+1])
		if !strings.Contains(logs, want) || !strings.Contains(logs, "starting it with --helper ") {
			t.Errorf("kubectl logs %s does not say %q and the --helper it starts with:\n%s", pod, want, logs)
		}
	}
	out, err := suite.kubectl("scale", "-n", ns, "statefulset/doris-fe", "--replicas=1")
	if err == nil || !strings.Contains(out, "fewer than the 3 FOLLOWERs that elect the master of this FE cluster") {
		t.Errorf("scaling the seed's FEs to 1 was not refused with its reason: %v\n%s", err, out)
	}
}
