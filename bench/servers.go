package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/doris-admission/doris-admission/certs"
	"github.com/doris-admission/doris-admission/internal/harness"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/inventory"
	"github.com/doris-admission/doris-admission/policies/source"
	"github.com/doris-admission/doris-admission/webhook"
)

// tlsFiles is a serving certificate for 127.0.0.1 written where a
// controller-runtime webhook server reads it, and the CA that signed it.
type tlsFiles struct {
	dir  string
	ca   []byte
	pool *x509.CertPool
}

// writeCertificates generates a CA and a serving certificate for 127.0.0.1
// with certs.Generate, as `doris-admission certs generate` does, into dir.
func writeCertificates(dir string) (*tlsFiles, error) {
	bundle, err := certs.Generate(certs.Options{Service: "doris-admission", Namespace: builtin.DefaultNamespace, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), bundle.Serving.CertPEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), bundle.Serving.KeyPEM, 0o600); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle.CA.CertPEM) {
		return nil, errors.New("the generated CA does not parse")
	}
	return &tlsFiles{dir: dir, ca: bundle.CA.CertPEM, pool: pool}, nil
}

// endpoint is a webhook server listening on loopback.
type endpoint struct {
	name string
	base string // https://127.0.0.1:port
}

// ours is doris-admission's webhook server as `serve` runs it: webhook.NewServer
// on an engine over a controller-runtime cache of the cluster, the built-in
// policies loaded and the node port index kept by the Service informer.
type ours struct {
	endpoint
	engine    *engine.Engine
	nodePorts *inventory.NodePorts
	mgr       ctrl.Manager
}

// startOurs starts the manager's caches and our webhook server on port, and
// waits until both are ready.
func startOurs(ctx context.Context, cfg *rest.Config, files *tlsFiles, port int) (*ours, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, fmt.Errorf("setting up the manager: %w", err)
	}
	nodePorts := inventory.NewNodePorts()
	watch, err := inventory.WatchServices(ctx, mgr.GetCache(), nodePorts)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	pcfg := source.Cluster(mgr.GetCache(), kube, mgr.GetRESTMapper(), kube.Discovery(), nil)
	pcfg.Namespace, pcfg.NodePorts = builtin.DefaultNamespace, nodePorts
	eng := engine.NewEngine(pcfg)
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		return nil, err
	}
	eng.Load(builtins)
	server := webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: port, CertDir: files.dir}, eng)
	for _, r := range []manager.Runnable{watch, server} {
		if err := mgr.Add(r); err != nil {
			return nil, err
		}
	}
	started := make(chan error, 1)
	go func() { started <- mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return nil, errors.New("the manager's cache did not sync")
	}
	if err := eng.WarmUp(ctx); err != nil {
		return nil, err
	}
	o := &ours{endpoint: endpoint{name: "doris-admission", base: "https://127.0.0.1:" + strconv.Itoa(port)}, engine: eng, nodePorts: nodePorts, mgr: mgr}
	if err := waitListening(ctx, port, started); err != nil {
		return nil, fmt.Errorf("doris-admission's webhook server: %w", err)
	}
	// The node port index is ready once the informer has listed the Services.
	for !nodePorts.Synced() {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return o, nil
}

// startNull starts the baseline: a controller-runtime webhook server, served
// the same way as ours, whose handler allows every request without looking
// at the object.
func startNull(ctx context.Context, files *tlsFiles, port int) (*endpoint, error) {
	server := crwebhook.NewServer(crwebhook.Options{
		Host:    "127.0.0.1",
		Port:    port,
		CertDir: files.dir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }},
	})
	allow := admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return admission.Allowed("")
	})
	server.Register(webhook.MutatePath, &crwebhook.Admission{Handler: allow})
	server.Register(webhook.ValidatePath, &crwebhook.Admission{Handler: allow})
	started := make(chan error, 1)
	go func() { started <- server.Start(ctx) }()
	if err := waitListening(ctx, port, started); err != nil {
		return nil, fmt.Errorf("the null webhook server: %w", err)
	}
	return &endpoint{name: "null webhook", base: "https://127.0.0.1:" + strconv.Itoa(port)}, nil
}

// waitListening waits until something accepts connections on port, or the
// server's Start returns.
func waitListening(ctx context.Context, port int, started <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-started:
			return fmt.Errorf("stopped before it listened: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		// A TLS handshake, so the server does not log a connection that
		// closed before one.
		dialer := &net.Dialer{Timeout: time.Second}
		if conn, err := tls.DialWithDialer(dialer, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &tls.Config{InsecureSkipVerify: true}); err == nil {
			conn.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("did not listen within 30 s")
}

// freePorts returns n free loopback ports.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		var err error
		if ports[i], err = harness.FreePort("127.0.0.1"); err != nil {
			return nil, err
		}
	}
	return ports, nil
}

// client is an HTTPS client with keep-alive that trusts files' CA, speaking
// HTTP/1.1 as the load generator does.
func (f *tlsFiles) client(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: f.pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     time.Minute,
			DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		},
	}
}
