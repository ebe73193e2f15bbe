package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/doris-admission/doris-admission/internal/harness"
	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/api/v1alpha1"
)

// serverMemory is what `doris-admission serve` holds with a cluster's worth
// of objects, once it has indexed every Service and loaded every policy.
type serverMemory struct {
	services, policies int
	// rss is the process's VmRSS; heap its Go heap in use
	// (go_memstats_heap_alloc_bytes from its /metrics).
	rss, heap uint64
}

// rssNamespace holds the Services of the server memory measure.
const rssNamespace = "bench-rss"

// measureServer creates services NodePort Services and the cluster policies
// that make n policies with the built-in ones (renamed copies, as the memory
// measure makes them), then runs the doris-admission binary built from root
// against the cluster and reads its memory once it is ready and every policy
// reports Ready, and writes its heap profile to profileDir when set. The
// audit scan is off: its results add about 2 KB per object (go test ./audit
// -bench Scan5000).
func measureServer(ctx context.Context, root string, cfg *rest.Config, files *tlsFiles, services, n int, profileDir string) (*serverMemory, error) {
	dir, err := os.MkdirTemp("", "doris-admission-bench-server-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "doris-admission")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/doris-admission")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building doris-admission: %w\n%s", err, out)
	}
	if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{Paths: []string{filepath.Join(root, "deploy", "crds")}}); err != nil {
		return nil, fmt.Errorf("installing the CRDs: %w", err)
	}
	if err := createServices(ctx, cfg, services); err != nil {
		return nil, err
	}
	cl, created, err := createPolicies(ctx, root, cfg, n)
	if err != nil {
		return nil, err
	}
	server, err := startServer(ctx, bin, dir, cfg, files)
	if err != nil {
		return nil, err
	}
	defer server.Stop(30 * time.Second)
	failed := func(err error) error { return fmt.Errorf("%w\nserver log:\n%s", err, server.Log()) }
	if err := poll(ctx, 2*time.Minute, func() (bool, error) { return allReady(ctx, cl, created) }); err != nil {
		return nil, failed(fmt.Errorf("waiting for the server to load %d policies: %w", len(created), err))
	}
	m := &serverMemory{services: services, policies: n}
	if m.rss, err = processRSS(server.Cmd.Process.Pid); err != nil {
		return nil, err
	}
	if m.heap, err = heapInUse("http://" + server.MetricsAddr + "/metrics"); err != nil {
		return nil, failed(err)
	}
	if profileDir != "" {
		err = download("http://"+server.MetricsAddr+"/debug/pprof/heap?gc=1", filepath.Join(profileDir, "heap-serve.pprof"))
	}
	return m, err
}

// startServer runs bin serve against cfg's cluster, writing its kubeconfig
// and log in dir, and waits until it is ready.
func startServer(ctx context.Context, bin, dir string, cfg *rest.Config, files *tlsFiles) (*harness.Server, error) {
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(cfg, kubeconfig); err != nil {
		return nil, err
	}
	port, err := harness.FreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	server, err := harness.StartServer(bin, filepath.Join(dir, "server.log"), nil,
		"--kubeconfig", kubeconfig, "--cert-dir", files.dir, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--webhook-configuration=", "--audit=false", "--shutdown-delay=0s", "--profiling")
	if err != nil {
		return nil, err
	}
	if err := server.WaitReady(ctx, 2*time.Minute); err != nil {
		server.Stop(30 * time.Second)
		return nil, err
	}
	return server, nil
}

// createServices creates n NodePort Services holding one node port each,
// with 8 clients at once.
func createServices(ctx context.Context, cfg *rest.Config, n int) error {
	fast := rest.CopyConfig(cfg)
	fast.QPS, fast.Burst = -1, 0
	kube, err := kubernetes.NewForConfig(fast)
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rssNamespace}}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	const workers = 8
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n && errs[w] == nil; i += workers {
				svc := nodePortService(i)
				svc.Namespace = rssNamespace
				svc.Spec.Type = corev1.ServiceTypeNodePort
				svc.Spec.Ports[0].Port = 80
				svc.Spec.Ports[0].TargetPort = intstr.FromInt32(8080)
				_, err := kube.CoreV1().Services(rssNamespace).Create(ctx, svc, metav1.CreateOptions{})
				if err != nil && !apierrors.IsAlreadyExists(err) {
					errs[w] = fmt.Errorf("creating Service %s: %w", svc.Name, err)
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// createPolicies creates the cluster policies that make n with the built-in
// ones, and returns a client that reads them and what it created.
func createPolicies(ctx context.Context, root string, cfg *rest.Config, n int) (client.Client, []client.Object, error) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, nil, err
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, nil, err
	}
	all, err := policySet(root, n)
	if err != nil {
		return nil, nil, err
	}
	var created []client.Object
	for _, p := range all {
		if p.Origin == policies.OriginBuiltin {
			continue
		}
		var obj client.Object = p.Validating
		if p.Mutating != nil {
			obj = p.Mutating
		}
		if err := cl.Create(ctx, obj); err != nil {
			return nil, nil, fmt.Errorf("creating policy %s: %w", obj.GetName(), err)
		}
		created = append(created, obj)
	}
	return cl, created, nil
}

// allReady tells whether every policy's status says the server compiled its
// generation and enforces it.
func allReady(ctx context.Context, cl client.Client, objects []client.Object) (bool, error) {
	for _, obj := range objects {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err
		}
		var status v1alpha1.PolicyStatus
		switch p := obj.(type) {
		case *v1alpha1.MutatingPolicy:
			status = p.Status
		case *v1alpha1.ValidatingPolicy:
			status = p.Status
		}
		if status.ObservedGeneration != obj.GetGeneration() || !meta.IsStatusConditionTrue(status.Conditions, "Ready") {
			return false, nil
		}
	}
	return true, nil
}

// writeKubeconfig writes a kubeconfig with cfg's server and credentials.
func writeKubeconfig(cfg *rest.Config, path string) error {
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters["bench"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kubeconfig.AuthInfos["bench"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kubeconfig.Contexts["bench"] = &clientcmdapi.Context{Cluster: "bench", AuthInfo: "bench"}
	kubeconfig.CurrentContext = "bench"
	return clientcmd.WriteToFile(*kubeconfig, path)
}

// processRSS is the VmRSS of process pid.
func processRSS(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return vmRSS(string(data))
}

// heapInUse reads go_memstats_heap_alloc_bytes from a Prometheus endpoint.
func heapInUse(url string) (uint64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(make([]byte, 64<<10), 1<<20)
	for lines.Scan() {
		if value, ok := strings.CutPrefix(lines.Text(), "go_memstats_heap_alloc_bytes "); ok {
			f, err := strconv.ParseFloat(value, 64)
			return uint64(f), err
		}
	}
	return 0, fmt.Errorf("%s has no go_memstats_heap_alloc_bytes", url)
}

// download writes what a GET of url answers to path.
func download(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}
