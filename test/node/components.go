package node

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// kubeletConfig: the node is tainted (Taint), so that only the pods of
// namespaces that tolerate it run here (see Namespace), not those of every
// StatefulSet the rest of the suite applies. cgroup v1 is all this machine has (cgroup2 has no
// controllers), so failCgroupV1 is false and the driver cgroupfs; pods go
// under cgroupRoot so that Stop finds them. The API server reaches the kubelet
// for logs and exec without client certificates, so the kubelet allows
// anyone: it listens on a test machine only. Eviction thresholds are low: a
// test must not lose its pods to a full disk of the machine.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: {{cgroupRoot}}
failSwapOn: false
containerRuntimeEndpoint: unix://{{socket}}
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
clusterDNS: [{{ip}}]
clusterDomain: {{domain}}
resolvConf: {{dir}}/resolv.conf
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
rotateCertificates: false
registerWithTaints: [{key: {{taint}}, effect: NoSchedule}]
`

func (n *Node) startKubelet(ctx context.Context) error {
	values := map[string]string{"cgroupRoot": cgroupRoot, "socket": n.containerdSocket(), "ip": n.ip, "domain": ClusterDomain, "dir": n.dir, "taint": Taint}
	config := filepath.Join(n.dir, "kubelet", "config.yaml")
	if err := os.MkdirAll(filepath.Dir(config), 0o755); err != nil {
		return err
	}
	// No name server but CoreDNS: pods must not resolve through the machine's.
	if err := os.WriteFile(filepath.Join(n.dir, "resolv.conf"), nil, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(config, []byte(fill(kubeletConfig, values)), 0o644); err != nil {
		return err
	}
	n.logf("starting the kubelet as node %s at %s", Name, n.ip)
	p, err := start(n.dir, "kubelet", filepath.Join(n.opts.Assets, "kubelet"), "--config", config,
		"--kubeconfig", n.kubeconfig, "--root-dir", filepath.Join(n.dir, "kubelet"), "--cert-dir", filepath.Join(n.dir, "kubelet", "pki"),
		"--node-ip", n.ip, "--hostname-override", Name)
	if err != nil {
		return err
	}
	n.processes = append(n.processes, p)
	return p.waitFor(ctx, "a Ready node", func(ctx context.Context) error {
		out, err := n.kubectl(ctx, "get", "node", Name, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil || out != "True" {
			return fmt.Errorf("node %s Ready: %q %v", Name, out, err)
		}
		return nil
	})
}

// startControllers starts kube-controller-manager (StatefulSets, endpoints,
// service accounts, the garbage collector, kube-root-ca.crt...) and the
// scheduler, without leader election.
func (n *Node) startControllers(ctx context.Context) error {
	n.logf("starting kube-controller-manager and kube-scheduler")
	kcm, err := start(n.dir, "kube-controller-manager", filepath.Join(n.opts.Assets, "kube-controller-manager"),
		"--kubeconfig", n.kubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
		"--root-ca-file", n.opts.CAFile, "--service-cluster-ip-range", n.opts.ServiceCIDR, "--use-service-account-credentials=false")
	if err != nil {
		return err
	}
	n.processes = append(n.processes, kcm)
	scheduler, err := start(n.dir, "kube-scheduler", filepath.Join(n.opts.Assets, "kube-scheduler"),
		"--kubeconfig", n.kubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0")
	if err != nil {
		return err
	}
	n.processes = append(n.processes, scheduler)
	return kcm.waitFor(ctx, "the default ServiceAccount", func(ctx context.Context) error {
		_, err := n.kubectl(ctx, "get", "serviceaccount", "default", "-n", "default")
		return err
	})
}

// kubeProxyConfig: iptables mode; conntrack settings left as the machine
// has them; NodePorts on the node's address only, not on 127.0.0.1 (that
// would need route_localnet).
const kubeProxyConfig = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: {{kubeconfig}}}
hostnameOverride: {{name}}
clusterCIDR: {{podCIDR}}
nodePortAddresses: ["{{ip}}/32"]
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false, masqueradeAll: false}
`

func (n *Node) startProxy(ctx context.Context) error {
	config := filepath.Join(n.dir, "kube-proxy.yaml")
	values := map[string]string{"kubeconfig": n.kubeconfig, "name": Name, "podCIDR": PodCIDR, "ip": n.ip}
	if err := os.WriteFile(config, []byte(fill(kubeProxyConfig, values)), 0o644); err != nil {
		return err
	}
	n.logf("starting kube-proxy")
	p, err := start(n.dir, "kube-proxy", filepath.Join(n.opts.Assets, "kube-proxy"), "--config", config)
	if err != nil {
		return err
	}
	n.processes = append(n.processes, p)
	return p.waitFor(ctx, "a healthy proxy", httpOK("http://127.0.0.1:10256/healthz"))
}

// corefile: the cluster's names from the API server; nothing else is
// resolved (no name server is reachable from here).
const corefile = `.:53 {
    bind {{ip}}
    errors
    ready 127.0.0.1:18181
    kubernetes {{domain}} in-addr.arpa ip6.arpa {
        kubeconfig {{kubeconfig}}
        pods insecure
        ttl 5
    }
    cache 5
}
`

func (n *Node) startCoreDNS(ctx context.Context) error {
	path := filepath.Join(n.dir, "Corefile")
	values := map[string]string{"ip": n.ip, "domain": ClusterDomain, "kubeconfig": n.kubeconfig}
	if err := os.WriteFile(path, []byte(fill(corefile, values)), 0o644); err != nil {
		return err
	}
	n.logf("starting CoreDNS on %s:53", n.ip)
	p, err := start(n.dir, "coredns", filepath.Join(n.opts.Assets, "coredns"), "-conf", path)
	if err != nil {
		return err
	}
	n.processes = append(n.processes, p)
	return p.waitFor(ctx, "a ready DNS server", httpOK("http://127.0.0.1:18181/ready"))
}

// routeServices routes the service range into the pods' bridge (made here
// if no pod has made it yet; the CNI plugin takes it as it is): a packet to
// a ClusterIP that kube-proxy has not rewritten (yet) stays on the machine.
func (n *Node) routeServices() error {
	if _, err := os.Stat(filepath.Join("/sys/class/net", bridgeName)); err != nil {
		if _, err := run("ip", "link", "add", bridgeName, "type", "bridge"); err != nil {
			return err
		}
	}
	if _, err := run("ip", "link", "set", bridgeName, "up"); err != nil {
		return err
	}
	_, err := run("ip", "route", "replace", n.opts.ServiceCIDR, "dev", bridgeName)
	return err
}

func httpOK(url string) func(context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, res.Status)
		}
		return nil
	}
}

// packageDir is this package's folder, where ./pause is.
func packageDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// run runs a command of this machine and returns its output.
func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
