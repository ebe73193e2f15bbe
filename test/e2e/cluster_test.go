package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/doris-admission/doris-admission/internal/harness"
	"github.com/doris-admission/doris-admission/test/node"
)

// cluster is a running etcd + kube-apiserver with our webhook configurations
// installed and a doris-admission server answering them.
type cluster struct {
	env        *envtest.Environment
	workDir    string
	kubeconfig string
	kubectlBin string
	serverBin  string
	server     *serverProcess
	// node runs the pods: a kubelet, containerd, the controllers, kube-proxy
	// and CoreDNS on this machine.
	node *node.Node
}

// startCluster starts the control plane from KUBEBUILDER_ASSETS, builds and
// starts doris-admission on envtest's local serving certificate, and waits
// until the server is ready.
func startCluster() (*cluster, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: run `make test`, which builds kube-apiserver, etcd and kubectl from source, or set it to the folder test/controlplane/build.sh prints")
	}
	workDir, err := os.MkdirTemp("", "doris-admission-e2e-")
	if err != nil {
		return nil, err
	}
	c := &cluster{workDir: workDir, kubectlBin: filepath.Join(assets, "kubectl")}
	c.env = harness.ControlPlane(assets, filepath.Join(repoRoot, "deploy", "crds"))
	c.env.WebhookInstallOptions = envtest.WebhookInstallOptions{
		Paths:            []string{filepath.Join(repoRoot, "deploy", "kustomize", "base", "webhooks.yaml")},
		LocalServingHost: "127.0.0.1",
	}
	if err := c.serveThePods(); err != nil {
		c.stop()
		return nil, err
	}
	if err := c.start(); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// serviceCIDR is the API server's service range, the node's too.
const serviceCIDR = "10.0.0.0/24"

// serveThePods makes the API server reachable from the node's pods, as
// the agent in a Doris pod reaches it: on the node's address, with a
// certificate for the `kubernetes` Service.
func (c *cluster) serveThePods() error {
	serving, err := node.PrepareAPIServer(filepath.Join(c.workDir, "apiserver"), serviceCIDR)
	if err != nil {
		return fmt.Errorf("preparing the API server for the node: %w", err)
	}
	apiServer := c.env.ControlPlane.GetAPIServer()
	apiServer.CertDir = serving.CertDir
	apiServer.SecureServing.Address, apiServer.SecureServing.Port = serving.Address, strconv.Itoa(serving.Port)
	apiServer.SecureServing.CA = serving.CA
	apiServer.Configure().Set("service-cluster-ip-range", serviceCIDR)
	for flag, value := range node.APIServerFlags {
		apiServer.Configure().Set(flag, value)
	}
	return nil
}

func (c *cluster) start() error {
	if _, err := c.env.Start(); err != nil {
		return fmt.Errorf("starting etcd and kube-apiserver: %w", err)
	}
	if err := c.writeKubeconfig(); err != nil {
		return err
	}
	if err := c.startNode(); err != nil {
		return err
	}
	c.serverBin = filepath.Join(c.workDir, "doris-admission")
	build := exec.Command("go", "build", "-o", c.serverBin, "./cmd/doris-admission")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building doris-admission: %w\n%s", err, out)
	}
	server, err := c.startServer(fmt.Sprint(c.env.WebhookInstallOptions.LocalServingPort))
	if err != nil {
		return err
	}
	c.server = server
	return nil
}

// writeKubeconfig writes an admin kubeconfig for kubectl and the server.
func (c *cluster) writeKubeconfig() error {
	admin, err := c.env.AddUser(envtest.User{Name: "e2e-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding the admin user: %w", err)
	}
	data, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("writing the admin kubeconfig: %w", err)
	}
	c.kubeconfig = filepath.Join(c.workDir, "kubeconfig")
	return os.WriteFile(c.kubeconfig, data, 0o600)
}

// startServer runs doris-admission serve on the given webhook port with
// envtest's serving certificate, and waits until it reports ready.
func (c *cluster) startServer(port string) (*serverProcess, error) {
	opts := c.env.WebhookInstallOptions
	return startServerProcess(c.serverBin, c.workDir, nil,
		"--kubeconfig", c.kubeconfig,
		"--cert-dir", opts.LocalServingCertDir,
		"--host", opts.LocalServingHost,
		"--port", port,
		// The reports are TestAuditReports' to write.
		"--audit=false",
		// The agent image the node has.
		"--agent-image", agentImage,
	)
}

func (c *cluster) stop() {
	if c.server != nil {
		c.server.stop()
	}
	if c.node != nil {
		if err := c.node.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: the node left things behind:", err)
		}
	}
	if err := c.env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: stopping the control plane:", err)
	}
	os.RemoveAll(c.workDir)
}

// kubectl runs the built kubectl against the cluster and returns its combined output.
func (c *cluster) kubectl(args ...string) (string, error) {
	cmd := exec.Command(c.kubectlBin, append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// apply runs kubectl apply with the manifest given as text.
func (c *cluster) apply(manifest string) (string, error) {
	file, err := os.CreateTemp(c.workDir, "manifest-*.yaml")
	if err != nil {
		return "", err
	}
	defer os.Remove(file.Name())
	if _, err := file.WriteString(manifest); err != nil {
		return "", err
	}
	file.Close()
	return c.kubectl("apply", "-f", file.Name())
}

// plainFE is a plain Doris FE StatefulSet, as people write it by hand, with
// an annotation whose value makes each apply an update.
func plainFE(name, namespace string, apply int) string {
	return fmt.Sprintf(`
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: %[1]s, namespace: %[2]s, labels: {e2e: plain-fe}, annotations: {apply: "%[3]d"}}
spec:
  serviceName: %[1]s
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      containers: [{name: fe, image: "apache/doris:fe-2.1.7"}]
`, name, namespace, apply)
}
