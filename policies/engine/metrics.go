package engine

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/doris-admission/doris-admission/policies/compile"
)

var (
	// evaluationSeconds measures each policy's evaluation on a request it matched.
	evaluationSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "doris_admission_policy_evaluation_duration_seconds",
		Help:    "Time to evaluate one policy on a request it matched, by policy and kind.",
		Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1},
	}, []string{"policy", "kind"})
	// evaluationErrors counts evaluations that failed (an expression error, the
	// cost limit, missing parameters), whatever failurePolicy then decided.
	evaluationErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "doris_admission_policy_errors_total",
		Help: "Policy evaluations that failed, by policy and kind; failurePolicy decides what the request gets.",
	}, []string{"policy", "kind"})
	// loadProblems is how many problems each loaded policy has: expressions
	// that do not compile, a paramKind the server cannot read.
	loadProblems = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "doris_admission_policy_problems",
		Help: "Problems of each loaded policy (expressions that do not compile, a paramKind the server cannot read), by policy and kind; each fails its requests per failurePolicy.",
	}, []string{"policy", "kind"})
)

func init() {
	metrics.Registry.MustRegister(evaluationSeconds, evaluationErrors, loadProblems)
}

// RecordProblems makes the problems gauge say exactly the loaded policies'.
func RecordProblems(loaded []Loaded) {
	loadProblems.Reset()
	for _, l := range loaded {
		loadProblems.WithLabelValues(l.Name(), l.Kind()).Set(float64(len(l.Problems)))
	}
}

// observe records one evaluation of c that started at start.
func observe(c *compile.Compiled, start time.Time, failed bool) {
	evaluationSeconds.WithLabelValues(c.Name(), c.Kind()).Observe(time.Since(start).Seconds())
	if failed {
		evaluationErrors.WithLabelValues(c.Name(), c.Kind()).Inc()
	}
}
