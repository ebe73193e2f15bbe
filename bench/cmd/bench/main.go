// Command bench runs doris-admission's benchmarks against their baselines,
// side by side in one process, and prints one table. `make bench` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/doris-admission/doris-admission/bench"
)

func main() {
	opts := bench.DefaultOptions()
	flag.StringVar(&opts.Assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "folder with etcd and kube-apiserver (default $KUBEBUILDER_ASSETS; make bench sets it)")
	flag.IntVar(&opts.Rate, "rate", opts.Rate, "fixed rate of the serving runs, requests per second")
	flag.DurationVar(&opts.RateDuration, "rate-duration", opts.RateDuration, "length of one fixed-rate run")
	flag.DurationVar(&opts.MaxDuration, "max-duration", opts.MaxDuration, "length of one maximum-throughput run")
	flag.IntVar(&opts.Workers, "workers", opts.Workers, "connections of the maximum-throughput runs")
	flag.IntVar(&opts.Rounds, "rounds", opts.Rounds, "rounds of serving runs, alternating the servers")
	flag.IntVar(&opts.Services, "services", opts.Services, "Services in the node port index")
	flag.IntVar(&opts.Creates, "creates", opts.Creates, "StatefulSet creates per way of admitting")
	flag.IntVar(&opts.CreateRounds, "create-rounds", opts.CreateRounds, "rounds of creates, alternating the ways of admitting")
	flag.IntVar(&opts.PodCreates, "pod-creates", opts.PodCreates, "Pod creates per way of admitting at each number of clients")
	flag.IntVar(&opts.PodRounds, "pod-rounds", opts.PodRounds, "rounds of Pod creates, alternating the ways of admitting")
	flag.Func("pod-clients", fmt.Sprintf("numbers of concurrent clients of the Pod creates, comma-separated (default %v)", opts.PodClients), func(s string) error {
		clients, err := bench.ParseClients(s)
		opts.PodClients = clients
		return err
	})
	flag.IntVar(&opts.MemoryPolicies, "memory-policies", opts.MemoryPolicies, "policies loaded for the memory measure")
	flag.IntVar(&opts.MemoryServices, "memory-services", opts.MemoryServices, "Services indexed for the memory measure")
	flag.IntVar(&opts.AuditObjects, "audit-objects", opts.AuditObjects, "existing objects the audit measure scans")
	flag.StringVar(&opts.ProfileDir, "profile-dir", "", "write here a CPU profile of each of doris-admission's maximum-throughput runs and the heap profile of doris-admission serve")
	flag.Parse()
	opts.Progress = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	table, err := bench.Run(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if err := table.Fprint(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
