package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/doris-admission/doris-admission/policies/engine"
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
	// ClientCA is a PEM file with the CA that signs the API server's client
	// certificate. When set, a client must present a certificate it signed;
	// the file is read when the server starts.
	ClientCA string
}

// cipherSuites are the TLS 1.2 cipher suites the server accepts: ECDHE key
// exchange with an AEAD cipher, nothing else. TLS 1.3, preferred whenever the
// client offers it, has only AEAD suites.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// NewServer returns a webhook server that answers /mutate and /validate with
// the engine's policies.
func NewServer(opts Options, eng *engine.Engine) webhook.Server {
	s := &server{clientCA: opts.ClientCA}
	s.Server = webhook.NewServer(webhook.Options{
		Host:    opts.Host,
		Port:    opts.Port,
		CertDir: opts.CertDir,
		TLSOpts: []func(*tls.Config){s.configureTLS},
	})
	mutate := closeWhenDraining(opts.Draining, answer(&webhook.Admission{Handler: &Handler{Name: "mutate", Decide: mutator{eng}.decide, KindOf: eng.KindOf}}))
	validate := closeWhenDraining(opts.Draining, answer(&webhook.Admission{Handler: &Handler{Name: "validate", Decide: validator{eng}.decide, KindOf: eng.KindOf}}))
	if opts.ClientCA != "" {
		mutate, validate = requireClientCert(mutate), requireClientCert(validate)
	}
	for path, handler := range map[string]http.Handler{MutatePath: mutate, ValidatePath: validate} {
		// The endpoint serves every policy; endpoint/<group> the webhook
		// group's (see Configurations).
		s.Register(path, handler)
		s.Register(path+"/", byGroup(path, handler))
	}
	return s
}

type groupKey struct{}

// byGroup passes on the webhook group in the path after endpoint.
func byGroup(endpoint string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		group := strings.TrimPrefix(r.URL.Path, endpoint+"/")
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), groupKey{}, group)))
	})
}

// request is req as the policies see it, from the webhook group the API
// server called.
func request(ctx context.Context, req *admissionv1.AdmissionRequest) (*engine.Request, error) {
	r, err := engine.RequestFromAdmission(req)
	if err == nil {
		r.Group, _ = ctx.Value(groupKey{}).(string)
	}
	return r, err
}

// server is controller-runtime's webhook server with the client CA read
// before it starts, so a missing or unreadable file stops the start with a
// message that names it.
type server struct {
	webhook.Server
	clientCA  string
	clientCAs *x509.CertPool
}

func (s *server) Start(ctx context.Context) error {
	if s.clientCA != "" {
		pool, err := readClientCA(s.clientCA)
		if err != nil {
			return err
		}
		s.clientCAs = pool
	}
	return s.Server.Start(ctx)
}

// configureTLS sets TLS 1.2 as the minimum, the AEAD cipher suites, and
// client certificate verification when there is a client CA.
func (s *server) configureTLS(c *tls.Config) {
	c.MinVersion = tls.VersionTLS12
	c.CipherSuites = cipherSuites
	if s.clientCAs != nil {
		// A certificate the client presents is verified in the handshake;
		// a request without one is refused by requireClientCert. So the
		// readiness check, which has none, completes its handshake.
		c.ClientCAs = s.clientCAs
		c.ClientAuth = tls.VerifyClientCertIfGiven
	}
}

// requireClientCert refuses, with HTTP 401, a request whose connection has
// no client certificate the client CA signed.
func requireClientCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			http.Error(w, "a client certificate signed by the client CA (--client-ca) is required: give the API server one for this webhook in its admission control configuration", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// readClientCA reads the CA certificates of a PEM file.
func readClientCA(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("the client CA file %s holds no PEM certificate: give the CA that signs the API server's client certificate", path)
	}
	return pool, nil
}
