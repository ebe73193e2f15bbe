package certs

import (
	"bytes"
	"testing"
	"time"

	"github.com/go-logr/logr"
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
		{"CA near expiry", 99 * time.Hour, nil, true, true},
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
			if tt.newCA {
				bundle := caBundle(secret, start.Add(tt.at))
				if !bytes.Contains(bundle, oldCA) || !bytes.Contains(bundle, secret.Data[keyCA]) {
					t.Error("during a CA rollover the bundle must hold both the old and the new CA")
				}
			}
		})
	}
}
