package webhook

import (
	"crypto/tls"

	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/doris-admission/doris-admission/policies"
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
	// Draining, when it says true, makes every response close its connection.
	Draining func() bool
}

// NewServer returns a webhook server that answers /mutate and /validate with
// the engine's policies.
func NewServer(opts Options, engine *policies.Engine) webhook.Server {
	server := webhook.NewServer(webhook.Options{
		Host:    opts.Host,
		Port:    opts.Port,
		CertDir: opts.CertDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }},
	})
	server.Register(MutatePath, closeWhenDraining(opts.Draining, strictReviews(&webhook.Admission{Handler: &Handler{Name: "mutate", Decide: mutator{engine}.decide}})))
	server.Register(ValidatePath, closeWhenDraining(opts.Draining, strictReviews(&webhook.Admission{Handler: &Handler{Name: "validate", Decide: validator{engine}.decide}})))
	return server
}
