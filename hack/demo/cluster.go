package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// serverNamespace is where the server runs, as in deploy/kustomize/base: it
// keeps its certificate Secret there, and the webhooks never see it.
const serverNamespace = "doris-admission"

// configurationName is the name of both webhook configurations in
// deploy/kustomize/base/webhooks.yaml.
const configurationName = "doris-admission"

// findRepo returns the repository's top folder: the nearest folder, from the
// working directory up, whose go.mod is doris-admission's.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(data, []byte("module github.com/doris-admission/doris-admission\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("the doris-admission repository is not here or above: run the demo from inside it (make demo)")
		}
		dir = parent
	}
}

// controlPlaneAssets returns the folder with kube-apiserver, etcd and
// kubectl: the one given, else what test/controlplane/build.sh builds or
// reuses (it reports its progress on stderr).
func controlPlaneAssets(ctx context.Context, repo, given string) (string, error) {
	if given != "" {
		for _, name := range []string{"kube-apiserver", "etcd", "kubectl"} {
			if _, err := os.Stat(filepath.Join(given, name)); err != nil {
				return "", fmt.Errorf("%s is not in %s (from --assets or KUBEBUILDER_ASSETS): run `make controlplane` and pass the folder it prints, or leave both unset", name, given)
			}
		}
		return given, nil
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repo, "test", "controlplane", "build.sh"))
	cmd.Dir, cmd.Stderr = repo, os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("building the control plane with test/controlplane/build.sh: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

// startControlPlane starts etcd and kube-apiserver from assets with the CRDs
// of deploy/crds installed.
func startControlPlane(repo, assets string) (*envtest.Environment, error) {
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
		CRDInstallOptions: envtest.CRDInstallOptions{
			Paths:              []string{filepath.Join(repo, "deploy", "crds")},
			ErrorIfPathMissing: true,
		},
	}
	if _, err := env.Start(); err != nil {
		// Stop what did start; envtest removes its own folders.
		env.Stop()
		return nil, fmt.Errorf("starting etcd and kube-apiserver from %s: %w", assets, err)
	}
	return env, nil
}

// writeKubeconfig writes a cluster-admin kubeconfig for kubectl and the server.
func writeKubeconfig(env *envtest.Environment, path string) error {
	admin, err := env.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding the admin user: %w", err)
	}
	data, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("writing the admin kubeconfig: %w", err)
	}
	return os.WriteFile(path, data, 0o600)
}

// kubeVersion is what kube-apiserver --version says, such as "v1.37.2".
func kubeVersion(assets string) string {
	out, err := exec.Command(filepath.Join(assets, "kube-apiserver"), "--version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "Kubernetes ")
}

// localWebhookConfigurations reads deploy/kustomize/base/webhooks.yaml and
// points every webhook at https://<address><path> instead of the in-cluster
// Service, since this cluster has no pod network; everything else (rules,
// failurePolicy, timeouts, namespaceSelector) is kept as written.
func localWebhookConfigurations(repo, address string) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	path := filepath.Join(repo, "deploy", "kustomize", "base", "webhooks.yaml")
	docs, err := readDocuments(path)
	if err != nil {
		return nil, nil, err
	}
	local := func(config *admissionregistrationv1.WebhookClientConfig) error {
		if config.Service == nil || config.Service.Path == nil {
			return fmt.Errorf("%s: a webhook's clientConfig has no service path to point at the local server", path)
		}
		url := "https://" + address + *config.Service.Path
		config.Service, config.URL = nil, &url
		return nil
	}
	var mutating *admissionregistrationv1.MutatingWebhookConfiguration
	var validating *admissionregistrationv1.ValidatingWebhookConfiguration
	for _, doc := range docs {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		switch meta.Kind {
		case "MutatingWebhookConfiguration":
			mutating = &admissionregistrationv1.MutatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, mutating); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", path, err)
			}
			for i := range mutating.Webhooks {
				if err := local(&mutating.Webhooks[i].ClientConfig); err != nil {
					return nil, nil, err
				}
			}
		case "ValidatingWebhookConfiguration":
			validating = &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, validating); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", path, err)
			}
			for i := range validating.Webhooks {
				if err := local(&validating.Webhooks[i].ClientConfig); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	if mutating == nil || validating == nil || mutating.Name != configurationName || validating.Name != configurationName {
		return nil, nil, fmt.Errorf("%s must hold a MutatingWebhookConfiguration and a ValidatingWebhookConfiguration named %s", path, configurationName)
	}
	return mutating, validating, nil
}

// readDocuments splits a YAML file into its non-empty documents.
func readDocuments(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		var probe map[string]any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		if len(probe) > 0 {
			docs = append(docs, doc)
		}
	}
}

// createNamespace creates a namespace, leaving an existing one alone.
func createNamespace(ctx context.Context, kube kubernetes.Interface, name string) error {
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// freeAddress returns a loopback address with a port nobody listens on.
func freeAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// server is a running `doris-admission serve`.
type server struct {
	cmd       *exec.Cmd
	logPath   string
	probeAddr string
	exited    chan struct{}
	exitErr   error
}

// startServer runs bin with args, its output going to logPath. It runs in
// its own process group, so a Ctrl-C in the terminal reaches only the demo,
// which then stops the server before the control plane.
func startServer(bin, logPath, probeAddr string, env, args []string) (*server, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	s := &server{cmd: exec.Command(bin, args...), logPath: logPath, probeAddr: probeAddr, exited: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() { s.exitErr = s.cmd.Wait(); close(s.exited) }()
	return s, nil
}

// waitReady polls /readyz until it answers 200.
func (s *server) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("doris-admission serve exited before it was ready (%v); its log:\n%s", s.exitErr, s.log())
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.probeAddr+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("doris-admission serve was not ready (/readyz on %s) within %s; its log:\n%s", s.probeAddr, timeout, s.log())
			}
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM, which drains the requests in flight, and waits; after
// timeout it kills the server.
func (s *server) stop(timeout time.Duration) error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(timeout):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("doris-admission serve did not stop within %s of SIGTERM and was killed", timeout)
	}
}

// log returns what the server printed so far.
func (s *server) log() string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	return string(data)
}
