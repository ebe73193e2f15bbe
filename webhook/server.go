package webhook

import (
	"context"
	"crypto/tls"

	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Paths of the admission endpoints; the webhook configurations under deploy/
// point the API server at them.
const (
	MutatePath   = "/mutate"
	ValidatePath = "/validate"
)

// Options configure where and how the admission endpoints are served.
type Options struct {
	// Host and Port the HTTPS listener binds to.
	Host string
	Port int
	// CertDir holds tls.crt and tls.key; a rotated pair is picked up without a restart.
	CertDir string
}

// NewServer returns a webhook server that answers /mutate with mutate and
// /validate with validate.
func NewServer(opts Options, mutate, validate DecideFunc) webhook.Server {
	server := webhook.NewServer(webhook.Options{
		Host:    opts.Host,
		Port:    opts.Port,
		CertDir: opts.CertDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }},
	})
	server.Register(MutatePath, &webhook.Admission{Handler: &Handler{Name: "mutate", Decide: mutate}})
	server.Register(ValidatePath, &webhook.Admission{Handler: &Handler{Name: "validate", Decide: validate}})
	return server
}

// AllowAll is the answer while no policy is loaded: every request is allowed unchanged.
func AllowAll(_ context.Context, _ admission.Request) admission.Response {
	return admission.Allowed("no policy applies")
}
