// Package bench measures doris-admission against baselines run side by side
// in the same process: its webhook server against a null controller-runtime
// webhook under vegeta's load, StatefulSet creates through the real
// kube-apiserver with no webhooks, with ours and with native policies, Pod
// creates from many clients under the Pod Security Standards the same three
// ways, the
// heap the engine and its node port index take, and the audit's evaluation
// of existing objects against admitting them. Run prints one table;
// `make bench` runs it (bench/cmd/bench) with the CEL benchmarks of policies/engine.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
)

// Options say how much load to apply and where things are.
type Options struct {
	// Root is the repository's top folder; found from the working folder when empty.
	Root string
	// Assets is the folder with etcd and kube-apiserver (KUBEBUILDER_ASSETS).
	Assets string

	// Rate is the fixed rate of the serving runs, in requests per second;
	// RateDuration and MaxDuration the length of one fixed-rate and one
	// maximum-throughput run; Workers the connections of the latter; Rounds
	// how often each run is repeated, alternating the servers.
	Rate                      int
	RateDuration, MaxDuration time.Duration
	Workers, Rounds           int
	// Services is how many Services the node port index holds.
	Services int
	// ProfileDir, when set, gets a CPU profile of each of our
	// maximum-throughput runs of the first round (cpu-<scenario>.pprof) and
	// the heap profile of the server memory measure (heap-serve.pprof).
	ProfileDir string

	// Creates is how many StatefulSets each way of admitting creates, in
	// CreateRounds rounds that alternate the ways.
	Creates, CreateRounds int

	// PodCreates is how many Pods each way of admitting creates at each
	// number of PodClients (concurrent clients), in PodRounds rounds that
	// alternate the ways.
	PodCreates, PodRounds int
	PodClients            []int

	// MemoryPolicies and MemoryServices size the memory measure.
	MemoryPolicies, MemoryServices int
	// AuditObjects is how many existing objects the audit measure scans.
	AuditObjects int

	// Progress gets a line per step; nil for none.
	Progress io.Writer
}

// DefaultOptions are the sizes `make bench` runs with: 6 to 13 minutes
// on 2 cores.
func DefaultOptions() Options {
	return Options{
		Rate: 1000, RateDuration: 3 * time.Second, MaxDuration: 1500 * time.Millisecond, Workers: 8, Rounds: 5,
		Services: 10000,
		Creates:  500, CreateRounds: 2,
		PodCreates: 3000, PodRounds: 2, PodClients: []int{50, 200, 500},
		MemoryPolicies: 200, MemoryServices: 10000,
		AuditObjects: 5000,
	}
}

// Run measures everything and returns the table.
func Run(ctx context.Context, opts Options) (*Table, error) {
	ctrl.SetLogger(logr.Discard())
	r, err := newRun(opts)
	if err != nil {
		return nil, err
	}
	r.progress("memory: loading %d policies and %d Services", opts.MemoryPolicies, opts.MemoryServices)
	mem, err := measureMemory(r.root, opts.MemoryPolicies, opts.MemoryServices)
	if err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	r.progress("audit: scanning and admitting %d objects", opts.AuditObjects)
	audited, err := measureAudit(r.root, opts.AuditObjects)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	stop, err := r.startCluster(ctx)
	defer stop()
	defer cancel() // first: the servers stop before the API server does
	if err != nil {
		return nil, err
	}
	if err := r.measureServing(); err != nil {
		return nil, fmt.Errorf("webhook serving: %w", err)
	}
	if err := r.measureCreates(ctx); err != nil {
		return nil, fmt.Errorf("StatefulSet creates: %w", err)
	}
	if err := r.measurePodSecurity(ctx); err != nil {
		return nil, fmt.Errorf("pod creates under the Pod Security Standards: %w", err)
	}
	// Last: the Services it creates reach our in-process server's index too.
	r.progress("memory: doris-admission serve with %d Services and %d policies in the cluster", opts.MemoryServices, opts.MemoryPolicies)
	server, err := measureServer(ctx, r.root, r.cfg, r.files, opts.MemoryServices, opts.MemoryPolicies, opts.ProfileDir)
	if err != nil {
		return nil, fmt.Errorf("server memory: %w", err)
	}
	r.table.Rows = append(r.table.Rows, memoryRows(mem, server)...)
	r.table.Rows = append(r.table.Rows, auditRow(audited))
	return &r.table, nil
}

// run is one Run: what it measures against and the table it fills.
type run struct {
	opts  Options
	root  string
	table Table
	// What startCluster starts: the API server, the certificates, our
	// in-process server and the null webhook, and a client without limits.
	cfg   *rest.Config
	files *tlsFiles
	ours  *ours
	null  *endpoint
	kube  kubernetes.Interface
}

func newRun(opts Options) (*run, error) {
	if opts.Assets == "" {
		return nil, errors.New("no control plane: set KUBEBUILDER_ASSETS to the folder `bash test/controlplane/build.sh` prints (make bench does)")
	}
	r := &run{opts: opts, root: opts.Root}
	if r.root == "" {
		var err error
		if r.root, err = repoRoot(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *run) progress(format string, args ...any) {
	if r.opts.Progress != nil {
		fmt.Fprintf(r.opts.Progress, "bench: "+format+"\n", args...)
	}
}

// startCluster starts etcd and kube-apiserver, our webhook server and the
// null one, and the namespaces and settings the measures use; stop undoes
// what started, whatever the error.
func (r *run) startCluster(ctx context.Context) (stop func(), err error) {
	var undo []func()
	stop = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	r.progress("starting etcd and kube-apiserver")
	env, cfg, err := startControlPlane(r.opts.Assets)
	if err != nil {
		return stop, err
	}
	undo = append(undo, func() { env.Stop() })
	certDir, err := os.MkdirTemp("", "doris-admission-bench-")
	if err != nil {
		return stop, err
	}
	undo = append(undo, func() { os.RemoveAll(certDir) })
	if r.files, err = writeCertificates(certDir); err != nil {
		return stop, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return stop, err
	}
	r.progress("starting doris-admission's webhook server and the null webhook")
	if r.ours, err = startOurs(ctx, cfg, r.files, ports[0]); err != nil {
		return stop, err
	}
	if r.null, err = startNull(ctx, r.files, ports[1]); err != nil {
		return stop, err
	}
	unlimited := *cfg
	unlimited.QPS, unlimited.Burst = -1, 0
	// The creates' warnings (the seed FE runs in IP mode) say nothing about speed.
	unlimited.WarningHandler = rest.NoWarnings{}
	if r.kube, err = kubernetes.NewForConfig(&unlimited); err != nil {
		return stop, err
	}
	r.cfg = cfg
	if err := createNamespaces(ctx, r.kube, r.ours, benchNamespace, plainNamespace, webhookNamespace, nativeNamespace); err != nil {
		return stop, err
	}
	return stop, createSettings(ctx, r.kube)
}

// measureServing sends the scenarios' reviews to our server and the null
// webhook, side by side.
func (r *run) measureServing() error {
	fillNodePorts(r.ours, r.opts.Services)
	scens, err := scenarios(r.root)
	if err != nil {
		return err
	}
	clients := map[*endpoint]*http.Client{&r.ours.endpoint: r.files.client(1024), r.null: r.files.client(1024)}
	o := r.opts
	load := servingLoad{Rate: o.Rate, RateDuration: o.RateDuration, MaxDuration: o.MaxDuration, Workers: o.Workers, Rounds: o.Rounds, ProfileDir: o.ProfileDir}
	stats, err := runServing(&r.ours.endpoint, r.null, clients, scens, load, r.progress)
	if err != nil {
		return err
	}
	for _, s := range scens {
		r.table.Rows = append(r.table.Rows, servingRows(s, stats[s.key][&r.ours.endpoint], stats[s.key][r.null], o)...)
	}
	return nil
}

// measureCreates creates StatefulSets through the API server with no
// webhook, with ours, and with the native policies export makes.
func (r *run) measureCreates(ctx context.Context) error {
	feObj, err := readObject(filepath.Join(r.root, "deploy", "examples", "seed-fe-plain.yaml"), "StatefulSet")
	if err != nil {
		return err
	}
	template, err := typedStatefulSet(feObj)
	if err != nil {
		return err
	}
	plain := &admitting{name: "no admission webhooks", namespace: plainNamespace}
	ourWay := &admitting{name: "doris-admission webhook", namespace: webhookNamespace}
	ourWay.on, ourWay.off = ourWebhook(r.ours, r.files, func(ctx context.Context) (bool, error) {
		return mutatedByDoris(ctx, r.kube, template, webhookNamespace)
	})
	native := &admitting{name: "native MutatingAdmissionPolicy", namespace: nativeNamespace}
	objects, exported, unavailable, notes, err := nativePolicies()
	if err != nil {
		return err
	}
	native.unavailable = unavailable
	if unavailable == "" {
		native.on, native.off = nativeWay(r.ours, objects, func(ctx context.Context) (bool, error) {
			return mutatedByDoris(ctx, r.kube, template, nativeNamespace)
		})
		r.table.Notes = append(r.table.Notes, fmt.Sprintf("(iii) applies the native policies `policy export --builtin` makes of %s; the others are not exported:", strings.Join(exported, ", ")))
	}
	r.table.Notes = append(r.table.Notes, notes...)
	if err := createStats(ctx, r.kube, template, []*admitting{plain, ourWay, native}, r.opts.Creates, r.opts.CreateRounds, r.progress); err != nil {
		return err
	}
	r.table.Rows = append(r.table.Rows, createRows(plain, ourWay, native, r.opts.Creates)...)
	return emptyNamespaces(ctx, r.kube, plainNamespace, webhookNamespace, nativeNamespace)
}

// servingRows are the p99 and throughput rows of one scenario.
func servingRows(s scenario, ours, null *servingStats, opts Options) []Row {
	p99 := float64(ours.p(0.99)) / float64(null.p(0.99))
	tput := ours.throughput() / null.throughput()
	rate := func(st *servingStats) string {
		return fmt.Sprintf("p99 %s (p50 %s, %.0f req/s)", ms(st.p(0.99)), ms(st.p(0.50)), float64(st.sent)/st.rateElapsed.Seconds())
	}
	return []Row{{
		ID: "serving/" + s.key + "/p99", Section: "webhook serving", Scenario: s.title,
		Measure: fmt.Sprintf("latency at %d req/s (median of %d rounds)", opts.Rate, opts.Rounds),
		Ours:    rate(ours), Baseline: rate(null) + " null webhook",
		Ratio: ratio(p99), Target: fmt.Sprintf("p99 <= %.1fx", s.p99), Met: met(p99 <= s.p99),
	}, {
		ID: "serving/" + s.key + "/max", Section: "webhook serving", Scenario: s.title,
		Measure: fmt.Sprintf("max throughput, %d conns (median of %d rounds)", opts.Workers, opts.Rounds),
		Ours:    fmt.Sprintf("%.0f req/s", ours.throughput()), Baseline: fmt.Sprintf("%.0f req/s null webhook", null.throughput()),
		Ratio: ratio(tput), Target: fmt.Sprintf(">= %.2fx", 1/s.throughput), Met: met(tput >= 1/s.throughput-1e-9),
	}}
}

// quantile is the q-quantile of latencies, by nearest rank; 0 for none.
func quantile(latencies []time.Duration, q float64) time.Duration {
	if len(latencies) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(latencies))
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// median and p99 of latencies.
func quantiles(latencies []time.Duration) (median, p99 time.Duration) {
	return quantile(latencies, 0.5), quantile(latencies, 0.99)
}

// createRows are the rows of the StatefulSet creates.
func createRows(plain, ours, native *admitting, n int) []Row {
	pm, pp := quantiles(plain.latencies)
	om, op := quantiles(ours.latencies)
	scenario := fmt.Sprintf("%d StatefulSet creates, ", n)
	measure := "create latency median / p99"
	rows := []Row{{
		ID: "apiserver/none", Section: "API server", Scenario: scenario + "(i) no admission webhooks",
		Measure: measure, Ours: ms(pm) + " / " + ms(pp), Baseline: "(the baseline of the rows below)",
	}}
	webhookRow := Row{
		ID: "apiserver/webhook", Section: "API server", Scenario: scenario + "(ii) doris-admission webhook",
		Measure: measure, Ours: ms(om) + " / " + ms(op), Target: "median <= 1.25x (iii)",
	}
	nativeRow := Row{ID: "apiserver/native", Section: "API server", Scenario: scenario + "(iii) native MutatingAdmissionPolicy", Measure: measure}
	if native.unavailable != "" {
		webhookRow.Baseline = ms(pm) + " / " + ms(pp) + " (i)"
		webhookRow.Ratio = ratio(float64(om)/float64(pm)) + " of (i)"
		webhookRow.Met = "n/a: (iii) not available"
		nativeRow.Ours = "not available: " + native.unavailable
	} else {
		nm, np := quantiles(native.latencies)
		webhookRow.Baseline = ms(nm) + " / " + ms(np) + " (iii)"
		webhookRow.Ratio = ratio(float64(om) / float64(nm))
		webhookRow.Met = met(float64(om) <= 1.25*float64(nm))
		nativeRow.Ours = ms(nm) + " / " + ms(np)
		nativeRow.Baseline = ms(pm) + " / " + ms(pp) + " (i)"
		nativeRow.Ratio = ratio(float64(nm)/float64(pm)) + " of (i)"
	}
	return append(rows, webhookRow, nativeRow)
}

// memoryRows are the rows of the memory measure.
func memoryRows(m *memoryStats, server *serverMemory) []Row {
	perService := float64(m.index) / float64(max(1, m.services))
	return []Row{{
		ID: "memory/policies", Section: "memory", Scenario: fmt.Sprintf("engine, %d policies loaded", m.policies),
		Measure: "Go heap after GC", Ours: mib(m.withPolicies),
		Baseline: fmt.Sprintf("%s with the %d built-in policies", mib(m.builtinOnly), m.builtinCount),
		Ratio:    ratio(float64(m.withPolicies) / float64(m.builtinOnly)),
	}, {
		ID: "memory/index", Section: "memory", Scenario: fmt.Sprintf("node port index, %d Services", m.services),
		Measure: "Go heap after GC", Ours: mib(m.index), Baseline: "0 MiB empty",
	}, {
		ID: "memory/per-service", Section: "memory", Scenario: "node port index",
		Measure: "bytes per Service (1 node port)", Ours: fmt.Sprintf("%.0f B", perService),
	}, {
		ID: "memory/server", Section: "memory",
		Scenario: fmt.Sprintf("doris-admission serve, %d Services and %d policies in the cluster", server.services, server.policies),
		Measure:  "RSS (VmRSS) / Go heap in use", Ours: mib(server.rss) + " / " + mib(server.heap),
		Baseline: mib(m.withPolicies+m.index) + " heap of the engine and index alone (rows above)",
	}}
}

// repoRoot walks up from the working folder to the one with go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(data), "module github.com/doris-admission/doris-admission\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the repository's go.mod above the working folder")
		}
		dir = parent
	}
}
