package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Default lifetimes: a CA outlives many serving certificates.
const (
	DefaultCAValidity    = 10 * 365 * 24 * time.Hour
	DefaultLeafValidity  = 365 * 24 * time.Hour
	clockSkewAllowance   = 5 * time.Minute
	organization         = "doris-admission"
	certificatePEMHeader = "CERTIFICATE"
)

// KeyPair is a certificate and its private key, PEM-encoded.
type KeyPair struct {
	CertPEM, KeyPEM []byte
}

// Bundle is a CA and a serving certificate it signed.
type Bundle struct {
	CA, Serving KeyPair
}

// Options say what to generate.
type Options struct {
	// Service and Namespace name the webhook's Service; the serving
	// certificate is valid for its DNS names.
	Service, Namespace string
	// Hosts are more names or IP addresses the serving certificate is valid for.
	Hosts []string
	// CAValidity and LeafValidity are the lifetimes; zero means the defaults.
	CAValidity, LeafValidity time.Duration
	// Now is the start of validity; zero means now.
	Now time.Time
}

// DNSNames are the names the API server may use to reach Service in Namespace.
func DNSNames(service, namespace string) []string {
	return []string{
		service,
		service + "." + namespace,
		service + "." + namespace + ".svc",
		service + "." + namespace + ".svc.cluster.local",
	}
}

// Generate makes a new CA and a serving certificate for the Service.
func Generate(opts Options) (*Bundle, error) {
	if opts.Service == "" || opts.Namespace == "" {
		return nil, fmt.Errorf("say which Service the certificate is for: both its name and namespace are needed")
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	ca, _, err := newCA(now, or(opts.CAValidity, DefaultCAValidity))
	if err != nil {
		return nil, err
	}
	serving, err := Issue(*ca, opts, now)
	if err != nil {
		return nil, err
	}
	return &Bundle{CA: *ca, Serving: *serving}, nil
}

// Issue makes a new serving certificate for opts, signed by ca.
func Issue(ca KeyPair, opts Options, now time.Time) (*KeyPair, error) {
	caKey, err := parseKey(ca.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("reading the CA key: %w", err)
	}
	hosts := append(DNSNames(opts.Service, opts.Namespace), opts.Hosts...)
	return newServing(&ca, caKey, hosts, now, or(opts.LeafValidity, DefaultLeafValidity))
}

func parseKey(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("no PEM key found")
	}
	return x509.ParseECPrivateKey(block.Bytes)
}

func newCA(now time.Time, validity time.Duration) (*KeyPair, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the CA key: %w", err)
	}
	template := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "doris-admission CA", Organization: []string{organization}},
		NotBefore:             now.Add(-clockSkewAllowance),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	pair, err := sign(template, template, key, key)
	return pair, key, err
}

// newServing issues a serving certificate for hosts (DNS names or IPs); the
// first is the Service's short name, the third its .svc name (the subject).
func newServing(ca *KeyPair, caKey *ecdsa.PrivateKey, hosts []string, now time.Time, validity time.Duration) (*KeyPair, error) {
	caCert, err := ParseCertificate(ca.CertPEM)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the serving key: %w", err)
	}
	var names []string
	var ips []net.IP
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			names = append(names, h)
		}
	}
	template := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[2], Organization: []string{organization}},
		DNSNames:     names,
		IPAddresses:  ips,
		NotBefore:    now.Add(-clockSkewAllowance),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	return sign(template, caCert, key, caKey)
}

// sign issues template for key, signed by parent's signer, and encodes both.
func sign(template, parent *x509.Certificate, key, signer *ecdsa.PrivateKey) (*KeyPair, error) {
	der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, fmt.Errorf("signing the certificate %q: %w", template.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the key of %q: %w", template.Subject.CommonName, err)
	}
	return &KeyPair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: certificatePEMHeader, Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// ParseCertificate decodes the first certificate of a PEM block.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != certificatePEMHeader {
		return nil, fmt.Errorf("no PEM certificate found")
	}
	return x509.ParseCertificate(block.Bytes)
}

// serial is a random 128-bit certificate serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic("the system's random source failed: " + err.Error())
	}
	return n
}

func or(d, fallback time.Duration) time.Duration {
	if d == 0 {
		return fallback
	}
	return d
}
