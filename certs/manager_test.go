package certs

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// secretFor builds the Secret data a Manager would have stored at now.
func secretFor(t *testing.T, m *Manager, now time.Time) map[string][]byte {
	t.Helper()
	b, err := Generate(m.options(now))
	if err != nil {
		t.Fatal(err)
	}
	return m.newSecret(b).Data
}

func TestRenew(t *testing.T) {
	m := &Manager{Options: Options{Service: "hook", Namespace: "ops", CAValidity: 100 * time.Hour, LeafValidity: 10 * time.Hour},
		RenewBefore: 2 * time.Hour, Log: logr.Discard()}
	start := time.Now()
	tests := []struct {
		name           string
		at             time.Duration
		hosts          []string
		renewed, newCA bool
	}{
		{"fresh", time.Hour, nil, false, false},
		{"serving certificate near expiry", 9 * time.Hour, nil, true, false},
		{"a host was added", time.Hour, []string{"127.0.0.1"}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.Options.Hosts = nil
			data := secretFor(t, m, start)
			secret := m.newSecret(&Bundle{})
			secret.Data = data
			oldCA := bytes.Clone(data[keyCA])
			oldLeaf := bytes.Clone(data["tls.crt"])
			m.Options.Hosts = tt.hosts
			renewed, err := m.renew(secret, start.Add(tt.at))
			if err != nil {
				t.Fatal(err)
			}
			if renewed != tt.renewed || bytes.Equal(oldLeaf, secret.Data["tls.crt"]) == tt.renewed {
				t.Errorf("renewed = %v (serving certificate changed: %v), want %v", renewed, !bytes.Equal(oldLeaf, secret.Data["tls.crt"]), tt.renewed)
			}
			if bytes.Equal(oldCA, secret.Data[keyCA]) == tt.newCA {
				t.Errorf("CA replaced = %v, want %v", !bytes.Equal(oldCA, secret.Data[keyCA]), tt.newCA)
			}
		})
	}
}

// TestCARollover: a CA near expiry is first only trusted, then signs. At no
// step is the serving certificate signed by a CA the bundle lacks, and the
// bundle of the step before already trusts it.
func TestCARollover(t *testing.T) {
	m := &Manager{Options: Options{Service: "hook", Namespace: "ops", CAValidity: 100 * time.Hour, LeafValidity: 10 * time.Hour},
		RenewBefore: 2 * time.Hour, Log: logr.Discard()}
	start := time.Now()
	secret := m.newSecret(&Bundle{})
	secret.Data = secretFor(t, m, start)
	at := start.Add(99 * time.Hour)
	// A serving certificate that is not itself due.
	if err := m.issue(secret, at); err != nil {
		t.Fatal(err)
	}
	oldCA, oldLeaf := bytes.Clone(secret.Data[keyCA]), bytes.Clone(secret.Data["tls.crt"])

	// Step 1: the next CA is trusted; nothing else changes.
	if renewed, err := m.renew(secret, at); err != nil || !renewed {
		t.Fatalf("renew near CA expiry = %v, %v; want the next CA staged", renewed, err)
	}
	next := bytes.Clone(secret.Data[keyNextCA])
	if !bytes.Equal(secret.Data[keyCA], oldCA) || !bytes.Equal(secret.Data["tls.crt"], oldLeaf) || len(next) == 0 {
		t.Fatal("staging the next CA changed the CA or the serving certificate, or made no next CA")
	}
	if bundle := caBundle(secret, at); !bytes.Contains(bundle, oldCA) || !bytes.Contains(bundle, next) {
		t.Fatal("while the next CA is staged, the bundle must trust both CAs")
	}
	trusted := caBundle(secret, at)

	// Within one renewal round nothing more happens: replicas inject first.
	if renewed, err := m.renew(secret, at.Add(m.interval()/2)); err != nil || renewed {
		t.Fatalf("renew right after staging = %v, %v; want no change", renewed, err)
	}

	// Step 2: the next CA signs a new serving certificate; the old CA stays trusted.
	at = at.Add(m.interval())
	if renewed, err := m.renew(secret, at); err != nil || !renewed {
		t.Fatalf("renew a round after staging = %v, %v; want the switch", renewed, err)
	}
	if !bytes.Equal(secret.Data[keyCA], next) || len(secret.Data[keyNextCA]) != 0 || bytes.Equal(secret.Data["tls.crt"], oldLeaf) {
		t.Fatal("the switch must make the next CA the CA and issue a new serving certificate")
	}
	newCA, _ := ParseCertificate(next)
	leaf, _ := ParseCertificate(secret.Data["tls.crt"])
	if !verifies(leaf, newCA, at) || !bytes.Contains(trusted, next) {
		t.Error("the new serving certificate must be signed by a CA the previous bundle already trusted")
	}
	if bundle := caBundle(secret, at); !bytes.Contains(bundle, oldCA) || !bytes.Contains(bundle, next) {
		t.Error("after the switch the bundle must still trust the old CA, which replicas may still serve")
	}
}

func TestExpiryCollector(t *testing.T) {
	dir := t.TempDir()
	m := &Manager{Options: Options{Service: "hook", Namespace: "ops"}, CertDir: dir, Log: logr.Discard()}
	secret := m.newSecret(&Bundle{})
	secret.Data = secretFor(t, m, time.Now())
	if err := m.writeFiles(secret); err != nil {
		t.Fatal(err)
	}
	leaf, _ := ParseCertificate(secret.Data["tls.crt"])
	ca, _ := ParseCertificate(secret.Data[keyCA])
	want := fmt.Sprintf(`
# HELP doris_admission_certificate_expiry_timestamp_seconds %s
# TYPE doris_admission_certificate_expiry_timestamp_seconds gauge
doris_admission_certificate_expiry_timestamp_seconds{certificate="ca"} %d
doris_admission_certificate_expiry_timestamp_seconds{certificate="serving"} %d
`, "When a certificate the webhook serves with expires, in Unix seconds: the serving certificate (tls.crt) and its CA (ca.crt), as found in the certificate folder.", ca.NotAfter.Unix(), leaf.NotAfter.Unix())
	if err := testutil.CollectAndCompare(ExpiryCollector{Dir: dir}, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
