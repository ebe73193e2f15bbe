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

func init() {
	// The controller-runtime registry is the one the manager serves on /metrics.
	metrics.Registry.MustRegister(requestsTotal)
}
