// Package webhook serves the admission endpoints the API server calls: /mutate
// and /validate on a controller-runtime webhook server, with a Prometheus count
// of every request by kind, operation and result.
package webhook
