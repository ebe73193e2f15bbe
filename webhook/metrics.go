package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Results an admission request can end with, as counted in requestsTotal.
const (
	resultAllowed = "allowed"
	resultPatched = "patched"
	resultDenied  = "denied"
	resultErrored = "errored"
)

// requestsTotal counts admission requests by the kind of the object, the
// operation and how the request ended.
var requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "doris_admission_requests_total",
	Help: "Admission requests handled, by object kind, operation and result (allowed, patched, denied, errored).",
}, []string{"webhook", "kind", "operation", "result"})

// requestSeconds measures how long answering a request takes, from decoding
// to the response, by endpoint.
var requestSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "doris_admission_request_duration_seconds",
	Help:    "Time to answer an admission request, by webhook (mutate, validate).",
	Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
}, []string{"webhook"})

func init() {
	// The controller-runtime registry is the one the manager serves on /metrics.
	metrics.Registry.MustRegister(requestsTotal, requestSeconds)
}
