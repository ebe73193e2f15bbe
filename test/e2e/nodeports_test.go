package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestNodePortRulesAnswerBeforeTheAllocator applies the hand-planned
// Services with kubectl: every problem is reported with our messages, naming
// the owner of a taken port, not the API server's "provided port is already
// allocated"; the valid Services are created.
func TestNodePortRulesAnswerBeforeTheAllocator(t *testing.T) {
	conflicts := filepath.Join(repoRoot, "deploy", "examples", "nodeport-conflicts.yaml")
	out, err := suite.kubectl("apply", "-f", conflicts)
	t.Cleanup(func() { suite.kubectl("delete", "-f", conflicts, "--ignore-not-found") })
	if err == nil {
		t.Fatalf("kubectl apply of the conflicting Services succeeded:\n%s", out)
	}
	for _, want := range []string{
		"service/doris-fe created",
		`nodePort 40000 (port "heartbeat") is outside the allowed range 30000-32767`,
		`nodePort 32130 is already used by Service default/doris-fe (port "http")`,
		`nodePort 31201 is used by ports "web" and "brpc" of this Service`,
		`port "brpc" has port 70000 and targetPort 8060; both must be in 1..65535`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "already allocated") {
		t.Errorf("the API server's allocator answered before the rules:\n%s", out)
	}
	if got, _ := suite.kubectl("get", "services", "doris-be", "doris-be-debug", "--ignore-not-found", "-o", "name"); strings.TrimSpace(got) != "" {
		t.Errorf("denied Services were stored: %s", got)
	}

	plan := filepath.Join(repoRoot, "deploy", "examples", "nodeport-plan.yaml")
	if out, err := suite.kubectl("create", "namespace", "doris"); err != nil && !strings.Contains(out, "AlreadyExists") {
		t.Fatalf("creating namespace doris: %v\n%s", err, out)
	}
	if out, err := suite.kubectl("apply", "-f", plan); err != nil {
		t.Fatalf("the valid plan was refused: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "-f", plan, "--ignore-not-found") })

	// Another namespace, and an update from ClusterIP to a taken node port.
	out, err = suite.apply(`
apiVersion: v1
kind: Service
metadata: {name: intruder, namespace: kube-public}
spec:
  type: NodePort
  selector: {app: x}
  ports: [{name: web, port: 80, nodePort: 31001}]
`)
	if err == nil || !strings.Contains(out, `nodePort 31001 is already used by Service doris/doriscluster-sample-fe-service (port "http-port")`) {
		t.Errorf("a cross-namespace collision was not denied with the owner's name: %v\n%s", err, out)
	}
	if out, err := suite.apply("apiVersion: v1\nkind: Service\nmetadata: {name: grows, namespace: default}\nspec:\n  selector: {app: x}\n  ports: [{name: web, port: 80}]\n"); err != nil {
		t.Fatalf("creating a ClusterIP Service: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "service", "grows", "--ignore-not-found") })
	out, err = suite.apply("apiVersion: v1\nkind: Service\nmetadata: {name: grows, namespace: default}\nspec:\n  type: NodePort\n  selector: {app: x}\n  ports: [{name: web, port: 80, nodePort: 32130}]\n")
	if err == nil || !strings.Contains(out, `nodePort 32130 is already used by Service default/doris-fe (port "http")`) {
		t.Errorf("an update to a taken node port was not denied: %v\n%s", err, out)
	}
}

// TestParallelCreatesForOnePort fires creates of several Services for one
// node port at once: exactly one is admitted, and every other is refused by
// the rules (a reservation), not by the allocator.
func TestParallelCreatesForOnePort(t *testing.T) {
	const n = 6
	outs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = suite.apply(fmt.Sprintf(
				"apiVersion: v1\nkind: Service\nmetadata: {name: racer-%d, namespace: default}\nspec:\n  type: NodePort\n  selector: {app: x}\n  ports: [{name: web, port: 80, nodePort: 30999}]\n", i))
		}()
		t.Cleanup(func() { suite.kubectl("delete", "service", fmt.Sprintf("racer-%d", i), "--ignore-not-found") })
	}
	wg.Wait()
	admitted := 0
	for i := range n {
		switch {
		case errs[i] == nil:
			admitted++
		case !strings.Contains(outs[i], "nodePort 30999 is already used by Service default/racer-"):
			t.Errorf("racer-%d was refused without the rules' message: %s", i, outs[i])
		}
	}
	if admitted != 1 {
		t.Errorf("%d of %d parallel creates for one node port were admitted, want 1", admitted, n)
	}
}

// TestValidateLive checks local manifests against the node ports of the
// Services in the real cluster.
func TestValidateLive(t *testing.T) {
	if out, err := suite.apply("apiVersion: v1\nkind: Service\nmetadata: {name: live-holder, namespace: default}\nspec:\n  type: NodePort\n  selector: {app: x}\n  ports: [{name: web, port: 80, nodePort: 30888}]\n"); err != nil {
		t.Fatalf("creating the Service: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "service", "live-holder") })
	file := filepath.Join(t.TempDir(), "plan.yaml")
	os.WriteFile(file, []byte("apiVersion: v1\nkind: Service\nmetadata: {name: planned, namespace: shop}\nspec:\n  type: NodePort\n  selector: {app: y}\n  ports: [{name: http, port: 80, nodePort: 30888}]\n"), 0o644)
	for _, tt := range []struct {
		args    []string
		failure bool
	}{
		{[]string{"validate", "-f", file}, false},
		{[]string{"validate", "-f", file, "--live", "--kubeconfig", suite.kubeconfig}, true},
	} {
		out, err := exec.Command(suite.serverBin, tt.args...).CombinedOutput()
		if (err != nil) != tt.failure {
			t.Errorf("%v: error %v, want failure %v\n%s", tt.args, err, tt.failure, out)
		}
		if tt.failure && !strings.Contains(string(out), `Service shop/planned: spec.ports: nodePort 30888 is already used by Service default/live-holder (port "web")`) {
			t.Errorf("%v did not name the live owner:\n%s", tt.args, out)
		}
	}
}

// TestExposeBE prints the debug Service of one BE pod, applies it with
// kubectl, and rewrites a Stream Load ErrorURL to the node's address and the
// Service's node port.
func TestExposeBE(t *testing.T) {
	service, err := exec.Command(suite.serverBin, "expose-be", "doris-be-2", "-n", "default", "--live", "--kubeconfig", suite.kubeconfig).Output()
	if err != nil {
		t.Fatalf("expose-be: %v\n%s", err, service)
	}
	if out, err := suite.apply(string(service)); err != nil {
		t.Fatalf("kubectl apply of the printed Service: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "service", "doris-be-2-debug") })
	nodePort, err := suite.kubectl("get", "service", "doris-be-2-debug", "-o", "jsonpath={.spec.ports[0].nodePort}")
	if err != nil || nodePort == "" {
		t.Fatalf("the Service has no node port: %v %q", err, nodePort)
	}
	errorURL := "http://doris-be-2.doris-be.default.svc.cluster.local:8040/api/_load_error_log?file=__shard_1/error_log_x"
	out, err := exec.Command(suite.serverBin, "expose-be", "doris-be-2", "-n", "default", "--kubeconfig", suite.kubeconfig, "--error-url", errorURL).CombinedOutput()
	if err != nil {
		t.Fatalf("expose-be --error-url: %v\n%s", err, out)
	}
	// The node's InternalIP, as its kubelet reports it.
	if want := "http://" + suite.node.IP() + ":" + nodePort + "/api/_load_error_log?file=__shard_1/error_log_x\n"; string(out) != want {
		t.Errorf("rewritten ErrorURL %q, want %q", out, want)
	}
}

// TestExposeBEBehindALoadBalancer rewrites the ErrorURL to the load
// balancer's address and the webserver port.
func TestExposeBEBehindALoadBalancer(t *testing.T) {
	service, err := exec.Command(suite.serverBin, "expose-be", "doris-be-1", "-n", "default", "--type", "LoadBalancer").Output()
	if err != nil {
		t.Fatalf("expose-be: %v\n%s", err, service)
	}
	if out, err := suite.apply(string(service)); err != nil {
		t.Fatalf("kubectl apply of the printed Service: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "service", "doris-be-1-debug") })
	errorURL := "http://doris-be-1.doris-be.default.svc.cluster.local:8040/api/_load_error_log?file=e"
	out, err := exec.Command(suite.serverBin, "expose-be", "doris-be-1", "--kubeconfig", suite.kubeconfig, "--error-url", errorURL).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "has no load balancer address yet") {
		t.Errorf("before the load balancer has an address: %v\n%s", err, out)
	}
	// No cloud controller runs here: the address is set the way one would.
	if out, err := suite.kubectl("patch", "service", "doris-be-1-debug", "--subresource=status", "--type=merge",
		"-p", `{"status":{"loadBalancer":{"ingress":[{"hostname":"lb.example.com"}]}}}`); err != nil {
		t.Fatalf("setting the load balancer address: %v\n%s", err, out)
	}
	out, err = exec.Command(suite.serverBin, "expose-be", "doris-be-1", "--kubeconfig", suite.kubeconfig, "--error-url", errorURL).CombinedOutput()
	if want := "http://lb.example.com:8040/api/_load_error_log?file=e\n"; err != nil || string(out) != want {
		t.Errorf("rewritten ErrorURL %q (%v), want %q", out, err, want)
	}
}
