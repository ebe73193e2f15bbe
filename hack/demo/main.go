// Command demo shows doris-admission at work on a newcomer's machine: it starts
// a throwaway etcd and kube-apiserver (the ones the e2e tests build from
// source), installs the CRDs and the webhook configurations, runs the real
// `doris-admission serve --manage-certificates` with no certificates, applies
// the example manifests of deploy/examples with kubectl and explains, in plain
// English, what the webhooks added and what they refused. Then it stops
// everything and removes its temporary files.
//
// It is a developer tool, run by `make demo`; it is not part of the product.
//
//	go run ./hack/demo [--keep] [--assets DIR]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// options are the demo's command line.
type options struct {
	// keep leaves the cluster running until Ctrl-C.
	keep bool
	// assets is the folder holding kube-apiserver, etcd and kubectl.
	assets string
}

func main() {
	var opts options
	flag.BoolVar(&opts.keep, "keep", envTrue("DEMO_KEEP"), "leave the cluster and the server running until Ctrl-C, to try kubectl yourself (or set DEMO_KEEP=1)")
	flag.StringVar(&opts.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "folder holding kube-apiserver, etcd and kubectl (default $KUBEBUILDER_ASSETS, else built or reused by test/controlplane/build.sh)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: go run ./hack/demo [--keep] [--assets DIR]\n\n"+
			"Runs doris-admission in front of a throwaway local kube-apiserver, applies the\n"+
			"examples in deploy/examples and explains what was added and what was refused.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "demo: unexpected argument %q; it takes only --keep and --assets\n", flag.Arg(0))
		os.Exit(2)
	}
	// envtest logs through controller-runtime's logger; the demo explains
	// what happens itself.
	ctrllog.SetLogger(zap.New(zap.WriteTo(io.Discard)))

	ctx, interrupted := interruptContext()
	err := run(ctx, os.Stdout, opts)
	switch {
	case err == nil:
	case interrupted():
		// What failed after a Ctrl-C failed because of it (a build or
		// kubectl killed by the same signal); only the cleanup matters.
		var stopping *cleanupError
		if errors.As(err, &stopping) {
			fmt.Fprintln(os.Stderr, "demo: interrupted, but", stopping)
		} else {
			fmt.Fprintln(os.Stderr, "demo: interrupted; everything it started is stopped and its temporary files are removed.")
		}
		os.Exit(130)
	default:
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// interruptContext returns a context that ends on the first Ctrl-C or
// SIGTERM. Later signals are caught too, so the demo always gets to stop the
// processes it started (they run in their own process groups and would
// otherwise outlive it).
func interruptContext() (context.Context, func() bool) {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	got := make(chan struct{})
	go func() {
		<-signals
		close(got)
		cancel()
		for range signals {
			fmt.Fprintln(os.Stderr, "demo: still stopping the server and the control plane; one moment.")
		}
	}()
	return ctx, func() bool {
		select {
		case <-got:
			return true
		default:
			return false
		}
	}
}

// envTrue reports whether the environment variable name is set to 1, true or yes.
func envTrue(name string) bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(name))) {
	case "1", "true", "yes", "y", "on":
		return true
	}
	return false
}
