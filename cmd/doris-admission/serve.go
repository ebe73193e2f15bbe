package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"net/http/pprof"
	"os"
	"sync/atomic"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/spf13/cobra"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/doris-admission/doris-admission/audit"
	"github.com/doris-admission/doris-admission/certs"
	"github.com/doris-admission/doris-admission/generate"
	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/api/v1alpha1"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/cluster"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/inventory"
	"github.com/doris-admission/doris-admission/policies/source"
	"github.com/doris-admission/doris-admission/webhook"
)

// serveOptions are the settings of `doris-admission serve`.
type serveOptions struct {
	webhook           webhook.Options
	certs             certOptions
	policies          policySources
	webhookConfig     string
	excludeNamespaces []string
	kubeconfig        string
	agentImage        string
	metricsAddress    string
	profiling         bool
	probeAddress      string
	shutdownTimeout   time.Duration
	shutdownDelay     time.Duration
	audit             bool
	auditInterval     time.Duration
	log               zap.Options
}

// newServeCommand returns the serve command; run does the serving, so tests
// can check flag handling without starting a server.
func newServeCommand(run func(context.Context, serveOptions) error) *cobra.Command {
	opts := serveOptions{log: zap.Options{Development: false}}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the admission webhook server",
		Long: `Serve the admission endpoints the API server calls (/mutate and /validate) over
HTTPS, with /healthz and /readyz for probes and Prometheus /metrics.

The server reads its serving certificate (tls.crt, tls.key) from --cert-dir and
picks up a rotated certificate without a restart. It stops gracefully on
SIGTERM: requests in flight are answered before it exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(ctrl.SetupSignalHandler(), opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.webhook.CertDir, "cert-dir", "/etc/doris-admission/tls", "folder holding the serving certificate as tls.crt and tls.key")
	flags.StringVar(&opts.webhook.Host, "host", "", "address the webhook listens on (all addresses when empty)")
	flags.StringVar(&opts.webhook.ClientCA, "client-ca", "", "PEM file with the CA that signs the API server's client certificate: a request must come with a certificate it signed (read at start)")
	flags.IntVar(&opts.webhook.Port, "port", 9443, "port the webhook listens on")
	flags.StringVar(&opts.metricsAddress, "metrics-bind-address", ":8080", "address serving Prometheus /metrics; \"0\" turns it off")
	flags.BoolVar(&opts.profiling, "profiling", false, "also serve Go's runtime profiles (heap, CPU, goroutines) at /debug/pprof/ on the metrics address, for `go tool pprof`")
	flags.StringVar(&opts.probeAddress, "health-probe-bind-address", ":8081", "address serving /healthz and /readyz")
	flags.DurationVar(&opts.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long to wait for requests in flight on SIGTERM")
	flags.DurationVar(&opts.shutdownDelay, "shutdown-delay", 5*time.Second, "on SIGTERM, how long to go on answering, not ready, before stopping: the time the Service's endpoints take to drop this pod")
	opts.policies.bindFlags(cmd)
	opts.certs.bindFlags(cmd)
	flags.StringVar(&opts.webhookConfig, "webhook-configuration", "doris-admission", "name of the MutatingWebhookConfiguration and ValidatingWebhookConfiguration the server keeps equal to the policies: after the first webhook of each (its anchor), one webhook per group of policies with the same failurePolicy and selectors; empty: leave them alone")
	flags.StringSliceVar(&opts.excludeNamespaces, "exclude-namespaces", []string{"kube-system", "kube-node-lease", ownNamespace()}, "namespaces never sent to the webhooks (kube-node-lease never is)")
	flags.BoolVar(&opts.audit, "audit", true, "scan the objects that already exist and write PolicyReports (wgpolicyk8s.io/v1alpha2); one replica scans, the one holding the Lease doris-admission-audit")
	flags.DurationVar(&opts.auditInterval, "audit-interval", time.Hour, "time between full scans, besides those at start, on policy changes and on object changes; 0: none")
	flags.StringVar(&opts.agentImage, "agent-image", "", "the agent image the doris-agent policy's init container runs, in place of the agentImage setting's default (the ConfigMap doris-admission-settings still wins)")
	flags.StringVar(&opts.kubeconfig, "kubeconfig", "", "kubeconfig file of the cluster (default: $KUBECONFIG, then the in-cluster service account, then ~/.kube/config)")
	logFlags := flag.NewFlagSet("log", flag.ContinueOnError)
	opts.log.BindFlags(logFlags)
	flags.AddGoFlagSet(logFlags)
	return cmd
}

// runServe starts the webhook server and the policy controller, and blocks
// until ctx ends and the requests in flight are answered.
func runServe(signalled context.Context, opts serveOptions) error {
	ctx, draining := afterDrainDelay(signalled, opts.shutdownDelay)
	setUpLogging(opts)
	static, err := opts.policies.load(ownNamespace(), nil)
	if err != nil {
		return fmt.Errorf("loading the policies: %w", err)
	}
	cacheErrors := &source.CacheErrors{}
	mgr, err := newManager(opts, cacheErrors)
	if err != nil {
		return err
	}
	opts.webhook.Draining = draining
	parts, err := newServerParts(ctx, mgr, opts, cacheErrors)
	if err != nil {
		return err
	}
	if err := parts.addTo(mgr, static, draining); err != nil {
		return fmt.Errorf("setting up the server: %w", err)
	}
	ctrl.Log.Info("starting doris-admission", "version", versionString(), "port", opts.webhook.Port, "certDir", opts.webhook.CertDir)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("serving: %w", err)
	}
	ctrl.Log.Info("stopped after answering the requests in flight")
	return nil
}

// setUpLogging sets the logger from the flags, and the Go memory limit from
// the container's.
func setUpLogging(opts serveOptions) {
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts.log)))
	if limit, err := limitMemory(memlimit.FromCgroup); err != nil {
		ctrl.Log.Info("the container's memory limit could not be read; the Go memory limit is left as it is", "error", err.Error())
	} else if limit != math.MaxInt64 {
		ctrl.Log.Info("Go memory limit set", "bytes", limit)
	}
}

// serverParts are what the manager runs besides the policy controller: the
// webhook server, the Service index, the generate controller, the
// certificate manager and the audit, and what each policy load updates.
type serverParts struct {
	engine    *engine.Engine
	server    crwebhook.Server
	runnables []manager.Runnable
	// onLoad runs after every load of the policies: the webhook
	// configurations, the generate controller and the audit follow them.
	onLoad func(context.Context) error
}

func newServerParts(ctx context.Context, mgr ctrl.Manager, opts serveOptions, cacheErrors *source.CacheErrors) (*serverParts, error) {
	certManager, err := opts.certs.start(ctx, mgr, opts.webhook.CertDir)
	if err != nil {
		return nil, err
	}
	if err := metrics.Registry.Register(certs.ExpiryCollector{Dir: opts.webhook.CertDir}); err != nil {
		return nil, fmt.Errorf("setting up the certificate metrics: %w", err)
	}
	nodePorts := inventory.NewNodePorts()
	watchServices, err := inventory.WatchServices(ctx, mgr.GetCache(), nodePorts)
	if err != nil {
		return nil, err
	}
	eng, err := newClusterEngine(mgr, nodePorts, opts.agentImage, cacheErrors)
	if err != nil {
		return nil, err
	}
	p := &serverParts{engine: eng, server: webhook.NewServer(opts.webhook, eng)}
	configurations := &webhook.Configurations{
		Reader: mgr.GetAPIReader(), Writer: mgr.GetClient(),
		Name: opts.webhookConfig, ExcludeNamespaces: opts.excludeNamespaces, Engine: eng,
	}
	generator := &generate.Controller{
		Engine: eng, Cache: mgr.GetCache(), Client: mgr.GetClient(), Mapper: mgr.GetRESTMapper(),
		ExcludeNamespaces: opts.excludeNamespaces, Log: ctrl.Log.WithName("generate"),
	}
	p.runnables = []manager.Runnable{p.server, watchServices, generator}
	if certManager != nil {
		configurations.CABundle, certManager.OnRenew = certManager.CABundle, configurations.Sync
		p.runnables = append(p.runnables, certManager)
	}
	followers := []func(context.Context) error{configurations.Sync, generator.PoliciesChanged}
	if opts.audit {
		scanner, err := newScanner(mgr, eng, opts)
		if err != nil {
			return nil, err
		}
		p.runnables = append(p.runnables, scanner)
		followers = append(followers, scanner.PoliciesChanged)
	}
	p.onLoad = func(ctx context.Context) error {
		var errs []error
		for _, follow := range followers {
			errs = append(errs, follow(ctx))
		}
		return errors.Join(errs...)
	}
	return p, nil
}

// addTo adds the parts, the policy controller (with the static policies)
// and the health checks to mgr.
func (p *serverParts) addTo(mgr ctrl.Manager, static []policies.Policy, draining func() bool) error {
	for _, r := range p.runnables {
		if err := mgr.Add(r); err != nil {
			return err
		}
	}
	controller := &cluster.Controller{
		Client: mgr.GetClient(), Engine: p.engine, Static: static, OnLoad: p.onLoad,
		AlsoWatch: []client.Object{&admissionregistrationv1.MutatingWebhookConfiguration{}, &admissionregistrationv1.ValidatingWebhookConfiguration{}},
	}
	return errors.Join(
		controller.SetupWithManager(mgr),
		mgr.AddHealthzCheck("ping", healthz.Ping),
		// Ready once the HTTPS listener answers and the policies are loaded.
		mgr.AddReadyzCheck("webhook", p.server.StartedChecker()),
		mgr.AddReadyzCheck("policies", controller.Ready),
		mgr.AddReadyzCheck("shutdown", notDraining(draining)),
	)
}

// limitMemory sets the Go runtime's soft memory limit to 90% of the memory
// limit provider reports (the container's cgroup limit in a pod), unless the
// GOMEMLIMIT or AUTOMEMLIMIT environment variables say otherwise, so the
// collector works harder before the kernel would kill the pod. With Go's
// default pacing alone, a server with 200 policies and 10,000 Services holds
// a heap of about 200 MiB and a resident set past 500 MiB (make bench).
func limitMemory(provider memlimit.Provider) (int64, error) {
	return memlimit.Set(memlimit.WithRatio(0.9), memlimit.WithProvider(provider))
}

// newManager connects to the cluster and sets up metrics and probes; the
// errors its informers get go to cacheErrors.
func newManager(opts serveOptions, cacheErrors *source.CacheErrors) (ctrl.Manager, error) {
	cfg, err := restConfig(opts.kubeconfig)
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1alpha1.AddToScheme(scheme)); err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: opts.metricsAddress, ExtraHandlers: profilingHandlers(opts.profiling)},
		HealthProbeBindAddress:  opts.probeAddress,
		GracefulShutdownTimeout: &opts.shutdownTimeout,
		Cache: cache.Options{
			DefaultWatchErrorHandler: cacheErrors.Handle,
			// No policy, lookup or report reads who last changed which field of
			// an object, and managedFields are a large part of a cached one
			// (BENCHMARKS.md, round two). A write of a cached object leaves
			// them as they are: the API server keeps them when a request has none.
			DefaultTransform: cache.TransformStripManagedFields(),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("setting up the server: %w", err)
	}
	return mgr, nil
}

// profilingHandlers are net/http/pprof's handlers under /debug/pprof/ when
// on, for the metrics server.
func profilingHandlers(on bool) map[string]http.Handler {
	if !on {
		return nil
	}
	return map[string]http.Handler{
		"/debug/pprof/":        http.HandlerFunc(pprof.Index),
		"/debug/pprof/cmdline": http.HandlerFunc(pprof.Cmdline),
		"/debug/pprof/profile": http.HandlerFunc(pprof.Profile),
		"/debug/pprof/symbol":  http.HandlerFunc(pprof.Symbol),
		"/debug/pprof/trace":   http.HandlerFunc(pprof.Trace),
	}
}

// afterDrainDelay returns a context that ends delay after signalled does, and
// a function that says whether signalled has ended. In between the server
// still answers, not ready and closing each connection after its response: a
// Service stops sending it new connections once it is not ready, and the
// requests already on their way are not refused.
func afterDrainDelay(signalled context.Context, delay time.Duration) (context.Context, func() bool) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(signalled))
	var stopping atomic.Bool
	go func() {
		<-signalled.Done()
		stopping.Store(true)
		ctrl.Log.Info("stopping: not ready any more, answering for the shutdown delay first", "delay", delay.String())
		time.Sleep(delay)
		cancel()
	}()
	return ctx, stopping.Load
}

// notDraining is a readiness check that fails once the server is draining.
func notDraining(draining func() bool) healthz.Checker {
	return func(*http.Request) error {
		if draining() {
			return errors.New("shutting down")
		}
		return nil
	}
}

// newScanner is the background scan of existing objects.
func newScanner(mgr ctrl.Manager, eng *engine.Engine, opts serveOptions) (*audit.Scanner, error) {
	kube, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	identity, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	return &audit.Scanner{
		Engine: eng, Cache: mgr.GetCache(), Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Mapper: mgr.GetRESTMapper(),
		Kube: kube, Namespace: ownNamespace(), LeaseName: "doris-admission-audit", Identity: identity + "_" + string(uuid.NewUUID()),
		Interval: opts.auditInterval, ExcludeNamespaces: opts.excludeNamespaces, Log: ctrl.Log.WithName("audit"),
	}, nil
}

// newClusterEngine is an engine on the manager's caches, the cluster's kinds
// and the node port index.
func newClusterEngine(mgr ctrl.Manager, nodePorts *inventory.NodePorts, agentImage string, cacheErrors *source.CacheErrors) (*engine.Engine, error) {
	kube, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	cfg := source.Cluster(mgr.GetCache(), kube, mgr.GetRESTMapper(), kube.Discovery(), cacheErrors)
	cfg.Namespace, cfg.NodePorts = ownNamespace(), nodePorts
	if agentImage != "" {
		cfg.Settings = map[string]string{"agentImage": agentImage}
	}
	return engine.NewEngine(cfg), nil
}

// ownNamespace is the namespace the server runs in: $POD_NAMESPACE (set from
// the downward API by the deployment) or doris-admission.
func ownNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return builtin.DefaultNamespace
}

// restConfig finds the cluster: the --kubeconfig file when given, otherwise
// $KUBECONFIG, the in-cluster service account or ~/.kube/config.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("reading --kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("finding the cluster: %w; pass --kubeconfig, set KUBECONFIG, or run inside a pod", err)
	}
	return cfg, nil
}

// kubeClient connects to the API server: the kubeconfig when given, else
// as restConfig finds the cluster.
func kubeClient(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}
