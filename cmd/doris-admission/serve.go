package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/doris-admission/doris-admission/webhook"
)

// serveOptions are the settings of `doris-admission serve`.
type serveOptions struct {
	webhook         webhook.Options
	kubeconfig      string
	metricsAddress  string
	probeAddress    string
	shutdownTimeout time.Duration
	log             zap.Options
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
	flags.IntVar(&opts.webhook.Port, "port", 9443, "port the webhook listens on")
	flags.StringVar(&opts.metricsAddress, "metrics-bind-address", ":8080", "address serving Prometheus /metrics; \"0\" turns it off")
	flags.StringVar(&opts.probeAddress, "health-probe-bind-address", ":8081", "address serving /healthz and /readyz")
	flags.DurationVar(&opts.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long to wait for requests in flight on SIGTERM")
	flags.StringVar(&opts.kubeconfig, "kubeconfig", "", "kubeconfig file of the cluster (default: $KUBECONFIG, then the in-cluster service account, then ~/.kube/config)")
	logFlags := flag.NewFlagSet("log", flag.ContinueOnError)
	opts.log.BindFlags(logFlags)
	flags.AddGoFlagSet(logFlags)
	return cmd
}

// runServe starts the webhook server and blocks until ctx ends and the
// requests in flight are answered.
func runServe(ctx context.Context, opts serveOptions) error {
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts.log)))
	cfg, err := restConfig(opts.kubeconfig)
	if err != nil {
		return err
	}
	server := webhook.NewServer(opts.webhook, webhook.AllowAll, webhook.AllowAll)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		WebhookServer:           server,
		Metrics:                 metricsserver.Options{BindAddress: opts.metricsAddress},
		HealthProbeBindAddress:  opts.probeAddress,
		GracefulShutdownTimeout: &opts.shutdownTimeout,
	})
	if err != nil {
		return fmt.Errorf("setting up the server: %w", err)
	}
	// The manager runs the webhook server only once asked for it.
	mgr.GetWebhookServer()
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	// Ready only once the HTTPS listener answers with the serving certificate.
	if err := mgr.AddReadyzCheck("webhook", server.StartedChecker()); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}
	ctrl.Log.Info("starting doris-admission", "version", versionString(), "port", opts.webhook.Port, "certDir", opts.webhook.CertDir)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("serving: %w", err)
	}
	ctrl.Log.Info("stopped after answering the requests in flight")
	return nil
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
