package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The node's networks and names. The pod and service ranges are routed into
// the node's bridge, so no packet for them ever leaves the machine.
const (
	// PodCIDR is where pods get their addresses.
	PodCIDR = "10.244.0.0/24"
	// Name is the node's name.
	Name       = "doris-admission-e2e"
	bridgeName = "dae2e0"
	// cniNetwork names the pods' network in the CNI config.
	cniNetwork = "doris-admission-e2e"
	// cgroupRoot holds every pod's cgroup, in each cgroup v1 hierarchy.
	cgroupRoot = "/doris-admission-e2e"
	pauseImage = "registry.k8s.io/pause:3.10"
	// ClusterDomain is the DNS domain CoreDNS serves.
	ClusterDomain = "cluster.local"
	// Taint keeps pods off the node unless their namespace tolerates it.
	Taint = "node.doris-admission.io/e2e"
)

// Namespace is a namespace whose pods run on the node: the API server's
// PodTolerationRestriction admission plugin gives them the toleration of
// Taint, so the users' manifests run as they are.
func Namespace(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  annotations:
    scheduler.alpha.kubernetes.io/defaultTolerations: '[{"key": "%s", "operator": "Exists"}]'
`, name, Taint)
}

// APIServerFlags are the flags the API server needs for the node: service
// account tokens for pods (envtest turns the admission plugin off), the
// namespace tolerations of Namespace, and the kubelet reached at the node's
// address (for logs, exec and attach): its name resolves nowhere.
var APIServerFlags = map[string]string{
	"disable-admission-plugins":       "",
	"enable-admission-plugins":        "PodTolerationRestriction",
	"kubelet-preferred-address-types": "InternalIP",
}

// Options say which binaries to run and which API server to join.
type Options struct {
	// Assets is the folder with kubelet, kube-controller-manager,
	// kube-scheduler, kube-proxy and coredns (test/controlplane/build.sh).
	Assets string
	// Kubeconfig is an admin kubeconfig of the API server; CAFile its CA,
	// which pods get as kube-root-ca.crt.
	Kubeconfig, CAFile string
	// ServiceCIDR is the API server's --service-cluster-ip-range.
	ServiceCIDR string
	// Images are built and imported besides the pause image.
	Images []Image
	// Log receives a line at each step.
	Log func(format string, args ...any)
}

// Node is a running one-node cluster.
type Node struct {
	opts Options
	dir  string
	// kubeconfig is the node's copy of Options.Kubeconfig, in dir: every
	// process the node starts names dir, so a run that was killed leaves none
	// the next cannot find.
	kubeconfig string
	ip         string
	processes  []*process
	sysctls    map[string]string
}

// IP is the node's address: where NodePorts answer and CoreDNS listens.
func (n *Node) IP() string { return n.ip }

// Start starts the node and waits until it is Ready, with DNS and the
// service proxy up. On error, what was started is stopped again.
func Start(ctx context.Context, opts Options) (*Node, error) {
	ip, err := nodeIP()
	if err != nil {
		return nil, err
	}
	removeLeftovers()
	dir, err := os.MkdirTemp("", "doris-admission-node-")
	if err != nil {
		return nil, err
	}
	n := &Node{opts: opts, dir: dir, ip: ip}
	if err := n.start(ctx); err != nil {
		return nil, errors.Join(err, n.Stop())
	}
	return n, nil
}

func (n *Node) start(ctx context.Context) error {
	n.sysctls = readSysctls()
	n.kubeconfig = filepath.Join(n.dir, "kubeconfig")
	kubeconfig, err := os.ReadFile(n.opts.Kubeconfig)
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.kubeconfig, kubeconfig, 0o600); err != nil {
		return err
	}
	if err := prepareCgroups(); err != nil {
		return err
	}
	if err := n.startContainerd(ctx); err != nil {
		return err
	}
	pause, err := pauseImageFiles(n.dir)
	if err != nil {
		return err
	}
	n.logf("building and importing %d images", len(n.opts.Images)+1)
	if err := n.importImages(ctx, append([]Image{pause}, n.opts.Images...)); err != nil {
		return err
	}
	for _, step := range []func(context.Context) error{n.startKubelet, n.startControllers, n.startProxy, n.startCoreDNS} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return n.routeServices()
}

func (n *Node) logf(format string, args ...any) {
	if n.opts.Log != nil {
		n.opts.Log("node: "+format, args...)
	}
}

// pauseImageFiles is the pause image: a static build of ./pause.
func pauseImageFiles(dir string) (Image, error) {
	bin := filepath.Join(dir, "pause")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./pause")
	build.Dir = packageDir()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return Image{}, fmt.Errorf("building the pause binary: %w\n%s", err, out)
	}
	return Image{Name: pauseImage, Files: map[string]File{"/pause": {From: bin}}, Entrypoint: []string{"/pause"}}, nil
}

// nodeIP is this machine's first IPv4 address that is not loopback: its
// host name resolves to 127.0.0.1, which pods cannot reach.
func nodeIP() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok && ipnet.IP.To4() != nil && !ipnet.IP.IsLoopback() {
			return ipnet.IP.String(), nil
		}
	}
	return "", errors.New("this machine has no IPv4 address but loopback, for the node")
}

// waitGone polls until check says done or ctx ends.
func waitGone(ctx context.Context, check func() bool) bool {
	for !check() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(500 * time.Millisecond):
		}
	}
	return true
}

func (n *Node) kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(n.opts.Assets, "kubectl"), append([]string{"--kubeconfig", n.opts.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
