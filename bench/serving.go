package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/pprof"
	"slices"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/webhook"
)

// benchNamespace is where the webhook serving requests' objects are.
const benchNamespace = "bench"

// scenario is one kind of request sent to both servers.
type scenario struct {
	key   string
	title string
	path  string
	body  []byte
	// check says what is wrong with our server's answer, if anything.
	check func(*admissionv1.AdmissionResponse) error
	// p99 is the largest p99 ratio to the null webhook allowed at the fixed
	// rate; the throughput must be at least 1/throughput of the null's.
	p99, throughput float64
}

// scenarios builds the requests: (a) the seed FE StatefulSet through /mutate,
// (b) a NodePort Service through /mutate (where the port rules run for
// Services), (c) a ConfigMap no policy matches through /mutate and /validate.
func scenarios(root string) ([]scenario, error) {
	fe, err := readObject(filepath.Join(root, "deploy", "examples", "seed-fe-plain.yaml"), "StatefulSet")
	if err != nil {
		return nil, err
	}
	svc, err := readObject(filepath.Join(root, "deploy", "examples", "nodeport-plan.yaml"), "Service")
	if err != nil {
		return nil, err
	}
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "bench-config"},
		"data":     map[string]any{"fe.conf": "priority_networks = 10.0.0.0/8\n", "owner": "bench"},
	}}
	stsBody, err := reviewBody(fe, schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"})
	if err != nil {
		return nil, err
	}
	svcBody, err := reviewBody(svc, schema.GroupVersionResource{Version: "v1", Resource: "services"})
	if err != nil {
		return nil, err
	}
	cmBody, err := reviewBody(cm, schema.GroupVersionResource{Version: "v1", Resource: "configmaps"})
	if err != nil {
		return nil, err
	}
	patched := func(r *admissionv1.AdmissionResponse) error {
		if !r.Allowed || len(r.Patch) == 0 {
			return fmt.Errorf("want an allowance with a patch, got allowed=%v and %d patch bytes", r.Allowed, len(r.Patch))
		}
		return nil
	}
	allowed := func(r *admissionv1.AdmissionResponse) error {
		if !r.Allowed || len(r.Patch) > 0 || len(r.Warnings) > 0 {
			return fmt.Errorf("want a plain allowance, got allowed=%v, %d patch bytes, warnings %q, %v", r.Allowed, len(r.Patch), r.Warnings, r.Result)
		}
		return nil
	}
	return []scenario{
		{key: "a", title: "(a) seed FE StatefulSet, /mutate", path: webhook.MutatePath, body: stsBody, check: patched, p99: 2, throughput: 2},
		{key: "b", title: "(b) NodePort Service, 10,000 in the index, /mutate", path: webhook.MutatePath, body: svcBody, check: allowed, p99: 2, throughput: 2},
		{key: "c-mutate", title: "(c) ConfigMap no policy matches, /mutate", path: webhook.MutatePath, body: cmBody, check: allowed, p99: 1.2, throughput: 1.2},
		{key: "c-validate", title: "(c) ConfigMap no policy matches, /validate", path: webhook.ValidatePath, body: cmBody, check: allowed, p99: 1.2, throughput: 1.2},
	}, nil
}

// readObject returns the first object of kind in the manifest file, in benchNamespace.
func readObject(file, kind string) (*unstructured.Unstructured, error) {
	docs, err := policies.ReadDocuments(file, nil)
	if err != nil {
		return nil, err
	}
	for _, doc := range docs {
		if doc.Object.GetKind() == kind {
			obj := doc.Object.DeepCopy()
			obj.SetNamespace(benchNamespace)
			return obj, nil
		}
	}
	return nil, fmt.Errorf("%s has no %s", file, kind)
}

// reviewBody is the AdmissionReview the API server sends for a CREATE of obj.
func reviewBody(obj *unstructured.Unstructured, gvr schema.GroupVersionResource) ([]byte, error) {
	raw, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, err
	}
	gvk := obj.GroupVersionKind()
	kind := metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind}
	resource := metav1.GroupVersionResource(gvr)
	dryRun := false
	return json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:             "8b9f3a52-0d5c-4d5e-9a59-6f4c3c1f5e01",
			Kind:            kind,
			Resource:        resource,
			RequestKind:     &kind,
			RequestResource: &resource,
			Name:            obj.GetName(),
			Namespace:       obj.GetNamespace(),
			Operation:       admissionv1.Create,
			UserInfo:        authenticationUser(),
			Object:          runtime.RawExtension{Raw: raw},
			DryRun:          &dryRun,
			Options:         runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"kubectl-client-side-apply","fieldValidation":"Strict"}`)},
		},
	})
}

// fillNodePorts puts n Services holding one node port each into the index,
// as policies/engine/nodeports_bench_test.go does.
func fillNodePorts(o *ours, n int) {
	for i := range n {
		o.nodePorts.Set(nodePortService(i))
	}
}

// nodePortService is the i-th Service of the node port index: one port,
// above the range the checked Service asks for, so they never collide.
func nodePortService(i int) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("load-%d", i%100), Name: fmt.Sprintf("svc-%d", i)},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "web", NodePort: int32(40000 + i), Protocol: corev1.ProtocolTCP}}},
	}
}

// attackResult is one attack on one server.
type attackResult struct {
	latencies []time.Duration
	ok        int
	elapsed   time.Duration
	failures  []string
	first     []byte
}

// attack sends body to url with vegeta: at rate requests per second, or as
// fast as workers connections allow when rate is 0, for d.
func attack(client *http.Client, url string, body []byte, rate, workers int, d time.Duration) attackResult {
	target := vegeta.Target{Method: http.MethodPost, URL: url, Body: body, Header: http.Header{"Content-Type": {"application/json"}}}
	opts := []func(*vegeta.Attacker){vegeta.Client(client), vegeta.MaxBody(1 << 20)}
	pacer := vegeta.Rate{Freq: rate, Per: time.Second}
	if rate == 0 {
		opts = append(opts, vegeta.Workers(uint64(workers)), vegeta.MaxWorkers(uint64(workers)))
	} else {
		opts = append(opts, vegeta.Workers(uint64(workers)), vegeta.MaxWorkers(1024))
	}
	attacker := vegeta.NewAttacker(opts...)
	var res attackResult
	start := time.Now()
	for r := range attacker.Attack(vegeta.NewStaticTargeter(target), pacer, d, "bench") {
		if r.Error != "" || r.Code != http.StatusOK {
			if len(res.failures) < 3 {
				res.failures = append(res.failures, fmt.Sprintf("HTTP %d %s %s", r.Code, r.Error, r.Body))
			}
			continue
		}
		if res.first == nil {
			res.first = r.Body
		}
		res.ok++
		res.latencies = append(res.latencies, r.Latency)
	}
	res.elapsed = time.Since(start)
	return res
}

// servingLoad says how hard and how long the servers are driven.
type servingLoad struct {
	Rate         int           // requests per second of the fixed-rate runs
	RateDuration time.Duration // length of one fixed-rate run
	MaxDuration  time.Duration // length of one maximum-throughput run
	Workers      int           // connections of the maximum-throughput runs
	Rounds       int           // times each run is repeated, alternating the servers
	ProfileDir   string        // where to write CPU profiles of our maximum-throughput runs
}

// servingStats is what the runs of one scenario on one server add up to.
// Each figure is the median over the rounds, so a moment when something
// else on the machine takes the cores weighs on one round, not on the result.
type servingStats struct {
	rounds      [][]time.Duration // the fixed-rate latencies of each round
	sent        int               // fixed-rate requests answered, all rounds
	rateElapsed time.Duration
	throughputs []float64 // requests per second of each maximum-throughput run
	failures    []string
}

// p is the median over the rounds of each round's q-quantile latency.
func (s *servingStats) p(q float64) time.Duration {
	var perRound []float64
	for _, latencies := range s.rounds {
		if len(latencies) == 0 {
			continue
		}
		perRound = append(perRound, float64(quantile(latencies, q)))
	}
	return time.Duration(median(perRound))
}

// throughput is the median of the maximum-throughput runs.
func (s *servingStats) throughput() float64 {
	return median(s.throughputs)
}

// median of values, 0 for none.
func median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// runServing measures every scenario on both servers, alternating them in
// each round so that whatever else the machine does weighs on both.
func runServing(ours, null *endpoint, clients map[*endpoint]*http.Client, scens []scenario, load servingLoad, progress func(string, ...any)) (map[string]map[*endpoint]*servingStats, error) {
	stats := map[string]map[*endpoint]*servingStats{}
	for _, s := range scens {
		stats[s.key] = map[*endpoint]*servingStats{ours: {}, null: {}}
		// Check our answer once, and warm both servers and connections up.
		for _, e := range []*endpoint{null, ours} {
			warm := attack(clients[e], e.base+s.path, s.body, 0, load.Workers, 300*time.Millisecond)
			if warm.ok == 0 {
				return nil, fmt.Errorf("%s %s: no request succeeded: %v", e.name, s.title, warm.failures)
			}
			if e == ours {
				var review admissionv1.AdmissionReview
				if err := json.Unmarshal(warm.first, &review); err != nil || review.Response == nil {
					return nil, fmt.Errorf("%s %s: not an AdmissionReview: %s", e.name, s.title, warm.first)
				}
				if err := s.check(review.Response); err != nil {
					return nil, fmt.Errorf("%s %s: %w", e.name, s.title, err)
				}
			}
		}
	}
	for round := range load.Rounds {
		for _, s := range scens {
			order := []*endpoint{null, ours}
			if round%2 == 1 {
				order = []*endpoint{ours, null}
			}
			for _, e := range order {
				progress("round %d/%d: %s, %s at %d req/s", round+1, load.Rounds, e.name, s.title, load.Rate)
				// Each run starts with the garbage of the one before collected.
				goruntime.GC()
				r := attack(clients[e], e.base+s.path, s.body, load.Rate, 10, load.RateDuration)
				st := stats[s.key][e]
				st.rounds = append(st.rounds, r.latencies)
				st.sent += r.ok
				st.rateElapsed += r.elapsed
				st.failures = append(st.failures, r.failures...)
			}
			for _, e := range order {
				progress("round %d/%d: %s, %s at maximum throughput", round+1, load.Rounds, e.name, s.title)
				goruntime.GC()
				stop, err := startProfile(load.ProfileDir, e == ours && round == 0, s.key)
				if err != nil {
					return nil, err
				}
				r := attack(clients[e], e.base+s.path, s.body, 0, load.Workers, load.MaxDuration)
				stop()
				st := stats[s.key][e]
				st.throughputs = append(st.throughputs, float64(r.ok)/r.elapsed.Seconds())
				st.failures = append(st.failures, r.failures...)
			}
		}
	}
	for _, s := range scens {
		for _, e := range []*endpoint{null, ours} {
			if f := stats[s.key][e].failures; len(f) > 0 {
				return nil, fmt.Errorf("%s %s: failed requests: %v", e.name, s.title, f)
			}
		}
	}
	return stats, nil
}

// startProfile starts a CPU profile into dir/cpu-<key>.pprof when on and
// dir is set, and returns what stops it.
func startProfile(dir string, on bool, key string) (func(), error) {
	if dir == "" || !on {
		return func() {}, nil
	}
	f, err := os.Create(filepath.Join(dir, "cpu-"+key+".pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, errors.Join(err, errors.New("is another CPU profile running? (go test -cpuprofile)"))
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
