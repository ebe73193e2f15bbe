package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Keys of the certificate Secret.
const (
	keyCA         = "ca.crt"
	keyCAKey      = "ca.key"
	keyPreviousCA = "ca-previous.crt"
	// The next CA, trusted but not yet signing: see renewCA.
	keyNextCA    = "ca-next.crt"
	keyNextCAKey = "ca-next.key"
)

// nextCASince is the Secret annotation with the time the next CA was made.
const nextCASince = "doris-admission.io/next-ca-since"

// Manager keeps the webhook's certificates: a CA and a serving certificate
// in a Secret that every replica shares, and their files in CertDir, which the
// webhook server's certwatcher reloads. CABundle is what the webhook
// configurations must trust: while a renewed CA rolls out, the previous one
// stays in it, so no replica's certificate is distrusted.
type Manager struct {
	// Client reads and writes without a cache.
	Client client.Client
	Secret types.NamespacedName
	// Options say which Service and hosts the certificate is for, and the lifetimes.
	Options Options
	// RenewBefore is how long before expiry a certificate is replaced.
	RenewBefore time.Duration
	CertDir     string
	// OnRenew runs after a renewal changed the CA bundle, to inject it.
	OnRenew func(ctx context.Context) error
	Log     logr.Logger

	bundle atomic.Pointer[[]byte]
}

// CABundle is the CA (and the previous CA while it is valid), PEM-encoded;
// nil before the first Ensure.
func (m *Manager) CABundle() []byte {
	if b := m.bundle.Load(); b != nil {
		return *b
	}
	return nil
}

// maxConflicts bounds the retries when replicas write the Secret at once.
const maxConflicts = 5

// Ensure makes the Secret hold a CA and a serving certificate that are not
// near expiry (creating or renewing them), writes the serving pair to
// CertDir and keeps the CA bundle. Replicas that race on the Secret
// converge: the loser of a write re-reads and uses what the winner stored.
// It reports whether the CA bundle changed.
func (m *Manager) Ensure(ctx context.Context) (bool, error) {
	for range maxConflicts {
		secret, err := m.ensureSecret(ctx)
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			continue
		}
		if err != nil {
			return false, err
		}
		if err := m.writeFiles(secret); err != nil {
			return false, err
		}
		bundle := caBundle(secret, time.Now())
		changed := !bytes.Equal(bundle, m.CABundle())
		m.bundle.Store(&bundle)
		return changed, nil
	}
	return false, fmt.Errorf("the Secret %s kept changing under this replica; giving up after %d tries", m.Secret, maxConflicts)
}

// ensureSecret reads the Secret, renews what is due, and writes it back.
func (m *Manager) ensureSecret(ctx context.Context) (*corev1.Secret, error) {
	now := time.Now()
	secret := &corev1.Secret{}
	err := m.Client.Get(ctx, m.Secret, secret)
	if apierrors.IsNotFound(err) {
		bundle, err := Generate(m.options(now))
		if err != nil {
			return nil, err
		}
		secret = m.newSecret(bundle)
		m.Log.Info("creating the webhook certificates", "secret", m.Secret)
		return secret, m.Client.Create(ctx, secret)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the certificate Secret %s: %w", m.Secret, err)
	}
	changed, err := m.renew(secret, now)
	if err != nil || !changed {
		return secret, err
	}
	return secret, m.Client.Update(ctx, secret)
}

// renew replaces, in secret, a CA or serving certificate that is missing,
// broken or near expiry, or a serving certificate that lacks a host.
func (m *Manager) renew(secret *corev1.Secret, now time.Time) (bool, error) {
	ca, err := ParseCertificate(secret.Data[keyCA])
	if err != nil {
		// Nothing can trust a CA that does not parse: start afresh.
		m.Log.Info("the webhook CA in the Secret is unreadable; making a new one", "secret", m.Secret, "reason", err.Error())
		bundle, err := Generate(m.options(now))
		if err != nil {
			return false, err
		}
		secret.Data = m.newSecret(bundle).Data
		return true, nil
	}
	if changed, err := m.renewCA(secret, ca, now); changed || err != nil {
		return changed, err
	}
	leaf, err := ParseCertificate(secret.Data[corev1.TLSCertKey])
	if err == nil && !m.due(leaf, now) && m.coversHosts(leaf) && verifies(leaf, ca, now) {
		return false, nil
	}
	m.Log.Info("renewing the webhook serving certificate", "secret", m.Secret)
	return true, m.issue(secret, now)
}

// renewCA replaces a CA near expiry in two steps, so the API server never
// sees a certificate it does not trust yet. First a next CA is made and only
// added to the bundle the webhook configurations trust; the serving
// certificate stays. Once every replica has had a renewal round to inject
// that bundle, the next CA becomes the CA, signs a new serving certificate,
// and the old one stays trusted as the previous CA until it expires.
func (m *Manager) renewCA(secret *corev1.Secret, ca *x509.Certificate, now time.Time) (bool, error) {
	since, staged := secret.Annotations[nextCASince]
	if !staged {
		if !m.due(ca, now) {
			return false, nil
		}
		m.Log.Info("the webhook CA is near expiry; adding the next CA to the trusted bundle first", "secret", m.Secret, "expires", ca.NotAfter)
		next, _, err := newCA(now, or(m.Options.CAValidity, DefaultCAValidity))
		if err != nil {
			return false, err
		}
		secret.Data[keyNextCA], secret.Data[keyNextCAKey] = next.CertPEM, next.KeyPEM
		metav1.SetMetaDataAnnotation(&secret.ObjectMeta, nextCASince, now.UTC().Format(time.RFC3339))
		return true, nil
	}
	stagedAt, err := time.Parse(time.RFC3339, since)
	if err == nil && now.Sub(stagedAt) < m.interval() {
		return false, nil
	}
	m.Log.Info("switching to the next webhook CA", "secret", m.Secret)
	secret.Data[keyPreviousCA] = secret.Data[keyCA]
	secret.Data[keyCA], secret.Data[keyCAKey] = secret.Data[keyNextCA], secret.Data[keyNextCAKey]
	delete(secret.Data, keyNextCA)
	delete(secret.Data, keyNextCAKey)
	delete(secret.Annotations, nextCASince)
	return true, m.issue(secret, now)
}

// issue replaces the serving certificate with one the CA signs.
func (m *Manager) issue(secret *corev1.Secret, now time.Time) error {
	serving, err := Issue(KeyPair{CertPEM: secret.Data[keyCA], KeyPEM: secret.Data[keyCAKey]}, m.options(now), now)
	if err != nil {
		return err
	}
	secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey] = serving.CertPEM, serving.KeyPEM
	return nil
}

func (m *Manager) options(now time.Time) Options {
	opts := m.Options
	opts.Now = now
	return opts
}

func (m *Manager) due(cert *x509.Certificate, now time.Time) bool {
	return now.Add(m.RenewBefore).After(cert.NotAfter)
}

// coversHosts tells whether leaf is valid for every host it should be.
func (m *Manager) coversHosts(leaf *x509.Certificate) bool {
	for _, host := range append(DNSNames(m.Options.Service, m.Options.Namespace), m.Options.Hosts...) {
		if leaf.VerifyHostname(host) != nil {
			return false
		}
	}
	return true
}

func verifies(leaf, ca *x509.Certificate, now time.Time) bool {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now})
	return err == nil
}

func (m *Manager) newSecret(b *Bundle) *corev1.Secret {
	secret := &corev1.Secret{Type: corev1.SecretTypeTLS, Data: map[string][]byte{
		keyCA: b.CA.CertPEM, keyCAKey: b.CA.KeyPEM,
		corev1.TLSCertKey: b.Serving.CertPEM, corev1.TLSPrivateKeyKey: b.Serving.KeyPEM,
	}}
	secret.Name, secret.Namespace = m.Secret.Name, m.Secret.Namespace
	secret.Labels = map[string]string{"app.kubernetes.io/name": "doris-admission"}
	return secret
}

// caBundle is the CA, the next CA while one is staged, and the previous CA
// while it is still valid.
func caBundle(secret *corev1.Secret, now time.Time) []byte {
	bundle := slices.Clone(secret.Data[keyCA])
	bundle = append(bundle, secret.Data[keyNextCA]...)
	if previous, err := ParseCertificate(secret.Data[keyPreviousCA]); err == nil && now.Before(previous.NotAfter) {
		bundle = append(bundle, secret.Data[keyPreviousCA]...)
	}
	return bundle
}

// writeFiles writes the serving pair and the CA to CertDir, each file replaced at once.
func (m *Manager) writeFiles(secret *corev1.Secret) error {
	if err := os.MkdirAll(m.CertDir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", m.CertDir, err)
	}
	// The key before the certificate: a reader that sees the new certificate
	// finds its key. The CA is there for the expiry metric.
	for _, key := range []string{corev1.TLSPrivateKeyKey, corev1.TLSCertKey, keyCA} {
		path := filepath.Join(m.CertDir, key)
		if current, err := os.ReadFile(path); err == nil && bytes.Equal(current, secret.Data[key]) {
			continue
		}
		if err := os.WriteFile(path+".tmp", secret.Data[key], 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return nil
}

// interval is how often the certificates are checked: often enough that
// renewal comes well before expiry.
func (m *Manager) interval() time.Duration {
	return min(m.RenewBefore/10, time.Hour)
}

// Start re-checks the certificates every interval until ctx ends, so they are
// renewed while the server runs; it implements manager.Runnable.
func (m *Manager) Start(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(m.interval()):
			changed, err := m.Ensure(ctx)
			if err == nil && changed && m.OnRenew != nil {
				err = m.OnRenew(ctx)
			}
			if err != nil {
				m.Log.Error(err, "renewing the webhook certificates failed; trying again later")
			}
		}
	}
}
