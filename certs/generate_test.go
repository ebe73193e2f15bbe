package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func TestGenerateServesTheServiceNames(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	b, err := Generate(Options{Service: "doris-admission", Namespace: "ops", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ParseCertificate(b.CA.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(b.Serving.CertPEM, b.Serving.KeyPEM)
	if err != nil {
		t.Fatalf("the serving certificate and key do not match: %v", err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range []string{"doris-admission.ops.svc", "doris-admission.ops.svc.cluster.local"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: now.Add(time.Hour)}); err != nil {
			t.Errorf("the serving certificate does not verify for %s: %v", name, err)
		}
	}
	if key, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || key.Curve != elliptic.P256() {
		t.Errorf("the serving key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if got := leaf.NotAfter.Sub(now); got != DefaultLeafValidity {
		t.Errorf("the serving certificate lasts %s, want %s", got, DefaultLeafValidity)
	}
	if got := ca.NotAfter.Sub(now); got != DefaultCAValidity || !ca.IsCA {
		t.Errorf("the CA lasts %s (CA: %v), want %s", got, ca.IsCA, DefaultCAValidity)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.ops.svc", Roots: roots, CurrentTime: now}); err == nil {
		t.Error("the serving certificate verifies for a name it was not made for")
	}
}

func TestGenerateNeedsTheService(t *testing.T) {
	if _, err := Generate(Options{Namespace: "ops"}); err == nil || !strings.Contains(err.Error(), "Service") {
		t.Errorf("error %v, want one asking for the Service", err)
	}
}
