package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doris-admission/doris-admission/agent"
	"github.com/doris-admission/doris-admission/test/node"
)

// agentImage is the agent image the suite's server puts into Doris pods.
const agentImage = "doris-admission/doris-admission-agent:e2e"

// nodeImages are the images the node's pods run: the agent image, built
// from cmd/doris-admission-agent as the Dockerfile builds it, and the Doris
// stand-in (test/standin) under the names users run, laid out as those
// images are (/opt/apache-doris/fe|be, bin/start_*.sh, conf, /bin/bash,
// the mysql client): the seed's, started by an explicit command, and the
// official ones, whose entrypoint is bin/init_*.sh.
func nodeImages(dir string) ([]node.Image, error) {
	agentBin, standinBin := filepath.Join(dir, "doris-admission-agent"), filepath.Join(dir, "doris-standin")
	// Each is built in its own module: the agent in the product's, the stand-in in the tests'.
	for bin, src := range map[string]struct{ module, pkg string }{
		agentBin:   {repoRoot, "./cmd/doris-admission-agent"},
		standinBin: {filepath.Join(repoRoot, "test"), "./standin"},
	} {
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, src.pkg)
		build.Dir, build.Env = src.module, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building %s: %w\n%s", src.pkg, err, out)
		}
	}
	images := []node.Image{{Name: agentImage, Files: map[string]node.File{"/usr/local/bin/doris-admission-agent": {From: agentBin}},
		Env: []string{"PATH=/usr/local/bin:/bin"}, Entrypoint: []string{"/usr/local/bin/doris-admission-agent"}}}
	for _, role := range []string{"fe", "be"} {
		for _, official := range []bool{false, true} {
			im, err := standinImage(role, official, standinBin)
			if err != nil {
				return nil, err
			}
			images = append(images, im)
		}
	}
	return images, nil
}

// Stand-in image names: the seed's and the official ones.
const (
	seedImage     = "zyzcenter/apache-doris:1.2.4.1-"
	officialImage = "apache/doris:%s-2.1.7"
)

func standinImage(role string, official bool, standinBin string) (node.Image, error) {
	name := seedImage + role
	if official {
		name = fmt.Sprintf(officialImage, role)
	}
	im, err := node.Busybox(name)
	if err != nil {
		return im, err
	}
	home := "/opt/apache-doris/" + role
	im.Files["/bin/bash"] = node.File{From: "/bin/bash-static"}
	im.Files[home+"/lib/doris-standin"] = node.File{From: standinBin}
	images := filepath.Join(repoRoot, "test", "standin", "image")
	im.Files["/usr/bin/mysql"] = node.File{From: filepath.Join(images, "common", "mysql")}
	trees := []string{filepath.Join(images, role)}
	im.Env = []string{"PATH=/usr/bin:/bin"}
	if official {
		trees = append(trees, filepath.Join(images, "official", role))
		im.Entrypoint, im.Cmd = []string{fmt.Sprintf("%s/bin/init_%s.sh", home, role)}, nil
		im.Env = []string{"PATH=" + home + "/bin:/usr/bin:/bin"}
	}
	for _, tree := range trees {
		err := filepath.WalkDir(tree, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(tree, path)
			im.Files[home+"/"+rel] = node.File{From: path}
			return nil
		})
		if err != nil {
			return im, err
		}
	}
	return im, nil
}

// TestSeedClusterRunsOnTheNode applies the seed's plain FE and BE
// StatefulSets (deploy/examples) as they are, in a namespace of the node:
// the pods start and become Ready, the BEs register and are alive, and what
// the hooks did is in kubectl logs.
func TestSeedClusterRunsOnTheNode(t *testing.T) {
	const ns = "seed"
	manifest := nodeNamespace(t, ns, "volume-fe-doris-fe-0", "volume-be-doris-be-0", "volume-be-doris-be-1", "volume-be-doris-be-2")
	for _, example := range []string{"seed-fe-plain.yaml", "seed-be-plain.yaml"} {
		data, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "examples", example))
		if err != nil {
			t.Fatal(err)
		}
		manifest += "---\n" + strings.ReplaceAll(string(data), "namespace: default", "namespace: "+ns)
	}
	out, err := suite.apply(manifest)
	if err != nil {
		t.Fatalf("applying the seed's StatefulSets: %v\n%s", err, out)
	}
	// The seed's Doris 1.2.4.1 FE has no FQDN mode: kubectl says so.
	if !strings.Contains(out, "Warning: spec.template.spec.containers: this FE runs in IP mode, so when its pod is recreated with another IP") {
		t.Errorf("applying the seed's FE does not warn that it runs in IP mode:\n%s", out)
	}
	// As the README says: be-decommission reads its pod and StatefulSet.
	if out, err := suite.kubectl("apply", "-n", ns, "-f", filepath.Join(repoRoot, "deploy", "agent", "rbac.yaml")); err != nil {
		t.Fatalf("applying the agent's RBAC: %v\n%s", err, out)
	}
	for _, pod := range []string{"doris-fe-0", "doris-be-0", "doris-be-1", "doris-be-2"} {
		waitReady(t, ns, pod)
	}
	fe, err := agent.Open(agent.Connection{Host: suite.node.IP(), Port: 32230, User: "root", Timeout: 5 * time.Second}, agent.NewLogger(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	defer fe.Close()
	var backends []agent.Backend
	eventually(t, time.Minute, func() string {
		backends, err = fe.Backends(context.Background())
		alive := 0
		for _, b := range backends {
			if b.Alive {
				alive++
			}
		}
		if err != nil || len(backends) != 3 || alive != 3 {
			return fmt.Sprintf("SHOW BACKENDS through the FE's NodePort: %v %+v", err, backends)
		}
		return ""
	})
	frontends, err := fe.Frontends(context.Background())
	if err != nil || len(frontends) != 1 || !frontends[0].IsMaster || !frontends[0].Alive {
		t.Errorf("SHOW FRONTENDS: %v %+v, want one master, alive", err, frontends)
	}
	// What a user sees, in the verbose log.
	pods, _ := suite.kubectl("get", "pods", "-n", ns, "-o", "wide")
	t.Logf("kubectl get pods -n %s -o wide\n%s\nSHOW FRONTENDS: %+v\nSHOW BACKENDS: %+v", ns, pods, frontends, backends)
	feLogs, _ := suite.kubectl("logs", "-n", ns, "doris-fe-0")
	t.Logf("kubectl logs -n %s doris-fe-0\n%s", ns, feLogs)
	if !strings.Contains(feLogs, "doris-admission agent: this FE ("+frontends[0].Host+":9010) is a member of the cluster") {
		t.Errorf("kubectl logs doris-fe-0 does not say what fe-register did:\n%s", feLogs)
	}
	for i, b := range backends {
		logs, _ := suite.kubectl("logs", "-n", ns, fmt.Sprintf("doris-be-%d", i))
		if !strings.Contains(logs, "doris-admission agent: added this BE") {
			t.Errorf("kubectl logs doris-be-%d does not say what be-register did (SHOW BACKENDS: %s):\n%s", i, b.Address(), logs)
		}
	}
	checkErrorURL(t, ns)
	podLife(t, ns, fe)
}

// checkErrorURL follows seed 000: a Stream Load ErrorURL names a BE pod
// inside the cluster; expose-be's Service and rewritten URL make it open from
// the node's address, and the BE answers it.
func checkErrorURL(t *testing.T, ns string) {
	t.Helper()
	service, err := exec.Command(suite.serverBin, "expose-be", "doris-be-1", "-n", ns).Output()
	if err != nil {
		t.Fatalf("expose-be: %v\n%s", err, service)
	}
	if out, err := suite.apply(string(service)); err != nil {
		t.Fatalf("applying the Service expose-be printed: %v\n%s", err, out)
	}
	errorURL := "http://doris-be-1.doris-be-service." + ns + ".svc.cluster.local:8040/api/_load_error_log?file=__shard_7/error_log_insert_stmt_1"
	out, err := exec.Command(suite.serverBin, "expose-be", "doris-be-1", "-n", ns, "--kubeconfig", suite.kubeconfig, "--error-url", errorURL).CombinedOutput()
	if err != nil {
		t.Fatalf("expose-be --error-url: %v\n%s", err, out)
	}
	var body string
	eventually(t, 30*time.Second, func() string {
		if body, err = httpGet(strings.TrimSpace(string(out))); err != nil {
			return fmt.Sprintf("GET %s: %v", strings.TrimSpace(string(out)), err)
		}
		return ""
	})
	if !strings.Contains(body, "__shard_7/error_log_insert_stmt_1") {
		t.Errorf("the rewritten ErrorURL %s answers %q, not the BE's error log", out, body)
	}
}

// hostPathVolume is a PersistentVolume of storage class local bound ahead
// to claim in ns: the node has no provisioner.
// nodeNamespace is the manifest of namespace ns on the node, with a hostPath
// PersistentVolume for each claim; they go, with the pods, when the test ends.
func nodeNamespace(t *testing.T, ns string, claims ...string) string {
	manifest := node.Namespace(ns)
	for _, claim := range claims {
		manifest += "---\n" + hostPathVolume(t, ns, claim)
	}
	t.Cleanup(func() {
		suite.kubectl("delete", "pods", "--all", "-n", ns, "--grace-period=5", "--wait=false")
		suite.kubectl("delete", "namespace", ns, "--wait=false")
		suite.kubectl("delete", "persistentvolumes", "-l", "doris-admission.io/e2e="+ns)
	})
	return manifest
}

func hostPathVolume(t *testing.T, ns, claim string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata: {name: %[1]s-%[2]s, labels: {doris-admission.io/e2e: %[1]s}}
spec:
  storageClassName: local
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Delete
  hostPath: {path: %[3]q, type: DirectoryOrCreate}
  claimRef: {namespace: %[1]s, name: %[2]s}
`, ns, claim, filepath.Join(t.TempDir(), claim))
}
