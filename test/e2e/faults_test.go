package e2e

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/doris-admission/doris-admission/internal/harness"
)

// faultsNamespace is where these tests make objects: the suite's own
// webhooks never see it, so only the server under test decides.
const faultsNamespace = "kube-system"

// startFaultsServer starts a server that owns the webhook configurations
// config, on a fixed address, deciding for faultsNamespace.
func startFaultsServer(t *testing.T, addr, config string) *serverProcess {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	s, err := startServerProcess(suite.serverBin, suite.workDir, []string{"POD_NAMESPACE=faults-e2e"},
		"--kubeconfig", suite.kubeconfig, "--cert-dir", suite.env.WebhookInstallOptions.LocalServingCertDir,
		"--host", host, "--port", port, "--webhook-configuration", config, "--exclude-namespaces=faults-e2e",
		"--audit=false", "--shutdown-delay=0s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

// TestServerKilledMidApply kills the server while kubectl applies many Doris
// StatefulSets in one go. The built-in policies fail closed: the apply fails
// and says why, and every StatefulSet that was stored is fully mutated. A
// ConfigMap matched only by a failurePolicy Ignore policy goes in (its
// webhook fails open), and so does a lease in kube-node-lease, which is
// never sent, while the same lease elsewhere is refused. A new server then
// enforces again.
func TestServerKilledMidApply(t *testing.T) {
	const config = "faults-e2e"
	addr, err := harness.FreeAddress("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ca := base64.StdEncoding.EncodeToString(suite.env.WebhookInstallOptions.LocalServingCAData)
	manifest := strings.ReplaceAll(webhookConfigurations(config, addr), "clientConfig: {url:", "clientConfig: {caBundle: "+ca+", url:")
	if out, err := suite.apply(manifest); err != nil {
		t.Fatalf("creating the webhook configurations: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration", config) })
	// A policy that only validates ConfigMaps of this test.
	if out, err := suite.apply(`
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: faults-e2e-configmaps}
spec:
  failurePolicy: Ignore
  matchConstraints:
    objectSelector: {matchLabels: {faults-e2e: "yes"}}
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}]
  validations: [{expression: "!has(object.data) || !('forbidden' in object.data)", message: "has the key forbidden"}]
---
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: faults-e2e-leases}
spec:
  matchConstraints:
    objectSelector: {matchLabels: {faults-e2e: "yes"}}
    resourceRules: [{apiGroups: [coordination.k8s.io], apiVersions: [v1], operations: [CREATE], resources: [leases]}]
  validations: [{expression: "true"}]
`); err != nil {
		t.Fatalf("creating the policies: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		suite.kubectl("delete", "validatingpolicy", "faults-e2e-configmaps", "faults-e2e-leases", "--ignore-not-found")
	})

	server := startFaultsServer(t, addr, config)
	eventually(t, 15*time.Second, func() string {
		m, _ := suite.kubectl("get", "mutatingwebhookconfiguration", config, "-o", "jsonpath={.webhooks[*].rules[*].resources}")
		v, _ := suite.kubectl("get", "validatingwebhookconfiguration", config, "-o", "jsonpath={.webhooks[*].rules[*].resources}")
		if !strings.Contains(m, "statefulsets") || !strings.Contains(v, "configmaps") || !strings.Contains(v, "leases") {
			return "the server did not set its rules: " + m + " / " + v
		}
		return ""
	})
	t.Cleanup(func() {
		suite.kubectl("delete", "statefulset", "-n", faultsNamespace, "-l", "e2e=plain-fe")
		suite.kubectl("delete", "configmap", "-n", faultsNamespace, "-l", "faults-e2e=yes")
		suite.kubectl("delete", "lease", "-n", "kube-node-lease", "-l", "faults-e2e=yes")
	})

	// Many StatefulSets in one apply; the server dies after the first few.
	var docs []string
	for i := range 40 {
		docs = append(docs, plainFE(fmt.Sprintf("faults-fe-%02d", i), faultsNamespace, 0))
	}
	type result struct {
		out string
		err error
	}
	applied := make(chan result, 1)
	go func() {
		out, err := suite.apply(strings.Join(docs, "---"))
		applied <- result{out, err}
	}()
	eventually(t, 30*time.Second, func() string {
		out, _ := suite.kubectl("get", "statefulsets", "-n", faultsNamespace, "-l", "e2e=plain-fe", "-o", "name")
		if strings.Count(out, "statefulset") < 3 {
			return "fewer than 3 StatefulSets stored yet"
		}
		return ""
	})
	server.Cmd.Process.Kill()
	<-server.Exited()
	res := <-applied
	if res.err == nil || !strings.Contains(res.out, `failed calling webhook "fail.mutate.doris-admission.io"`) {
		t.Errorf("the apply must fail and name the webhook it could not call (%v):\n%s", res.err, res.out)
	}
	stored, _ := suite.kubectl("get", "statefulsets", "-n", faultsNamespace, "-l", "e2e=plain-fe",
		"-o", `jsonpath={range .items[*]}{.metadata.name} {.spec.template.spec.terminationGracePeriodSeconds} {.spec.template.spec.containers[0].env[*].name}{"\n"}{end}`)
	lines := strings.Split(strings.TrimSpace(stored), "\n")
	if len(lines) == 0 || len(lines) == len(docs) {
		t.Fatalf("stored %d of %d StatefulSets; the kill came too late or too early to test", len(lines), len(docs))
	}
	for _, line := range lines {
		if !strings.Contains(line, " 120 ") || !strings.Contains(line, "FE_IPADDRESS") {
			t.Errorf("a StatefulSet was stored without the built-in mutations: %s", line)
		}
	}

	// The policy with failurePolicy Ignore fails open: with the server
	// down, a ConfigMap it would deny goes in.
	if out, err := suite.apply(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "faults-open", "namespace": "kube-system", "labels": {"faults-e2e": "yes"}}, "data": {"forbidden": "x"}}`); err != nil {
		t.Errorf("with failurePolicy Ignore a ConfigMap must go in while the server is down: %v\n%s", err, out)
	}
	// kube-node-lease is never sent: a lease the Fail policy matches goes in
	// there, and is refused in a namespace the server is sent.
	lease := `{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "faults-lease", "namespace": "%s", "labels": {"faults-e2e": "yes"}}, "spec": {"holderIdentity": "e2e"}}`
	if out, err := suite.apply(fmt.Sprintf(lease, "kube-node-lease")); err != nil {
		t.Errorf("a lease in kube-node-lease must go in while the server is down: %v\n%s", err, out)
	}
	if out, err := suite.apply(fmt.Sprintf(lease, faultsNamespace)); err == nil || !strings.Contains(out, `failed calling webhook "fail-`) {
		t.Errorf("a lease the Fail policy guards must be refused while the server is down (%v):\n%s", err, out)
	}

	// A new server on the same address enforces again.
	startFaultsServer(t, addr, config)
	out, err := suite.apply(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "faults-closed", "namespace": "kube-system", "labels": {"faults-e2e": "yes"}}, "data": {"forbidden": "x"}}`)
	if err == nil || !strings.Contains(out, "has the key forbidden") {
		t.Errorf("the restarted server must deny the ConfigMap (%v):\n%s", err, out)
	}
	if out, err := suite.apply(plainFE("faults-fe-after", faultsNamespace, 0)); err != nil {
		t.Fatalf("a StatefulSet after the restart: %v\n%s", err, out)
	}
	env, _ := suite.kubectl("get", "statefulset", "-n", faultsNamespace, "faults-fe-after", "-o", "jsonpath={.spec.template.spec.containers[0].env[*].name}")
	if !strings.Contains(env, "FE_IPADDRESS") {
		t.Errorf("the restarted server did not mutate: env %q", env)
	}
}

// TestAPIServerOutage cuts the server off from the API server, as an API
// server restart does: every connection dropped, new ones refused for a
// while. The server keeps deciding from its caches, then reconnects and
// resyncs: a Service made elsewhere during the outage holds its node port
// in the server's inventory afterwards.
func TestAPIServerOutage(t *testing.T) {
	const config = "outage-e2e"
	proxy, err := newCuttableProxy(apiServerAddress())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.close)
	kubeconfig := viaProxy(t, proxy.addr)
	addr, err := harness.FreeAddress("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ca := base64.StdEncoding.EncodeToString(suite.env.WebhookInstallOptions.LocalServingCAData)
	if out, err := suite.apply(strings.ReplaceAll(webhookConfigurations(config, addr), "clientConfig: {url:", "clientConfig: {caBundle: "+ca+", url:")); err != nil {
		t.Fatalf("creating the webhook configurations: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration", config) })
	if out, err := suite.kubectl("create", "namespace", "outage-e2e"); err != nil {
		t.Fatalf("creating the namespace: %v\n%s", err, out)
	}
	host, port, _ := strings.Cut(addr, ":")
	server, err := startServerProcess(suite.serverBin, suite.workDir, []string{"POD_NAMESPACE=outage-e2e"},
		"--kubeconfig", kubeconfig, "--cert-dir", suite.env.WebhookInstallOptions.LocalServingCertDir,
		"--host", host, "--port", port, "--webhook-configuration", config, "--exclude-namespaces=outage-e2e", "--audit=false")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(server.stop)
	eventually(t, 15*time.Second, func() string {
		if rules, _ := suite.kubectl("get", "mutatingwebhookconfiguration", config, "-o", "jsonpath={.webhooks[*].rules[*].resources}"); !strings.Contains(rules, "services") {
			return "the server did not set its rules: " + rules
		}
		return ""
	})
	service := func(namespace, name string, nodePort int) string {
		return fmt.Sprintf(`{"apiVersion": "v1", "kind": "Service", "metadata": {"name": %q, "namespace": %q}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": %d}]}}`, name, namespace, nodePort)
	}
	t.Cleanup(func() {
		suite.kubectl("delete", "service", "-n", faultsNamespace, "outage-before", "outage-clash", "--ignore-not-found")
		suite.kubectl("delete", "namespace", "outage-e2e", "--wait=false")
	})
	if out, err := suite.apply(service(faultsNamespace, "outage-before", 31611)); err != nil {
		t.Fatalf("creating a Service: %v\n%s", err, out)
	}
	clash := func(nodePort int, owner string) string {
		out, err := suite.apply(service(faultsNamespace, "outage-clash", nodePort))
		if err == nil {
			suite.kubectl("delete", "service", "-n", faultsNamespace, "outage-clash")
			return fmt.Sprintf("a clash on %d was allowed", nodePort)
		}
		if !strings.Contains(out, "is already used by Service "+owner) {
			return fmt.Sprintf("the clash on %d was not refused naming %s: %s", nodePort, owner, out)
		}
		return ""
	}

	proxy.cut()
	// Cut off, the server decides from its caches.
	if problem := clash(31611, faultsNamespace+"/outage-before"); problem != "" {
		t.Errorf("during the outage: %s", problem)
	}
	// A Service the server is not asked about (its own namespace is
	// excluded) takes a node port meanwhile.
	if out, err := suite.apply(service("outage-e2e", "outage-elsewhere", 31612)); err != nil {
		t.Fatalf("creating a Service during the outage: %v\n%s", err, out)
	}
	time.Sleep(3 * time.Second)
	proxy.resume()
	eventually(t, 90*time.Second, func() string { return clash(31612, "outage-e2e/outage-elsewhere") })
	if proxy.dropped() == 0 {
		t.Error("the proxy dropped no connection: the outage did not reach the server")
	}
}

// apiServerAddress is the API server's host:port.
func apiServerAddress() string {
	return strings.TrimSuffix(strings.TrimPrefix(suite.env.Config.Host, "https://"), "/")
}

// viaProxy is the suite's kubeconfig with the API server at addr.
func viaProxy(t *testing.T, addr string) string {
	t.Helper()
	data, err := os.ReadFile(suite.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	rewritten := strings.ReplaceAll(string(data), "https://"+apiServerAddress(), "https://"+addr)
	if rewritten == string(data) {
		t.Fatalf("the suite's kubeconfig does not name %s", apiServerAddress())
	}
	if err := os.WriteFile(path, []byte(rewritten), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cuttableProxy forwards TCP connections to target until cut: then it
// drops them all and refuses new ones until resumed.
type cuttableProxy struct {
	addr     string
	target   string
	listener net.Listener
	mu       sync.Mutex
	down     bool
	conns    map[net.Conn]bool
	drops    int
}

func newCuttableProxy(target string) (*cuttableProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &cuttableProxy{addr: l.Addr().String(), target: target, listener: l, conns: map[net.Conn]bool{}}
	go p.accept()
	return p, nil
}

func (p *cuttableProxy) accept() {
	for {
		conn, err := p.listener.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		if !down {
			p.conns[conn] = true
		}
		p.mu.Unlock()
		if down {
			conn.Close()
			continue
		}
		go func() {
			defer p.forget(conn)
			upstream, err := net.Dial("tcp", p.target)
			if err != nil {
				return
			}
			defer upstream.Close()
			go io.Copy(upstream, conn)
			io.Copy(conn, upstream)
		}()
	}
}

func (p *cuttableProxy) forget(conn net.Conn) {
	conn.Close()
	p.mu.Lock()
	delete(p.conns, conn)
	p.mu.Unlock()
}

func (p *cuttableProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for conn := range p.conns {
		conn.Close()
		p.drops++
	}
}

func (p *cuttableProxy) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

func (p *cuttableProxy) dropped() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.drops
}

func (p *cuttableProxy) close() { p.listener.Close() }
