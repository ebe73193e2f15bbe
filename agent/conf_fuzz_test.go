package agent

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// settings lists the values of key in a Doris conf, as Doris reads it: every
// line that is not a comment and has key before its first "=".
func settings(conf []byte, key string) []string {
	var values []string
	for line := range strings.SplitSeq(string(conf), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == key {
			values = append(values, strings.TrimSpace(v))
		}
	}
	return values
}

// tail is the end of a conf, for messages.
func tail(conf []byte) []byte {
	return conf[max(0, len(conf)-300):]
}

// FuzzPrepareConf runs prepare-conf on an arbitrary conf file and pod IP.
// Properties: no panic; a bad IP is an error that names the variable; the
// conf that did not set the key gets exactly one line setting it, at the
// end, to ${VAR}/32 or /128 (or enable_fqdn_mode = true), and every line it
// had is kept before it; a conf that set the key already is left exactly as
// it was; the other files are copied as they are; a second run changes
// nothing.
func FuzzPrepareConf(f *testing.F) {
	for _, seed := range []string{"official-fe/fe.conf", "official-be/be.conf", "preset-fe/fe.conf"} {
		data, err := os.ReadFile(filepath.Join("testdata", "conf", seed))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "10.244.1.7", false)
		f.Add(data, "fd00:10:244::7", false)
		f.Add(data, "", true)
	}
	f.Add([]byte(""), "10.0.0.1", false)
	f.Add([]byte("no newline at the end"), "10.0.0.1", false)
	f.Add([]byte("priority_networks=10.0.0.0/8"), "10.0.0.1", false)
	f.Add([]byte("  priority_networks  =  \r\n"), "10.0.0.1", false)
	f.Add([]byte("# priority_networks = 10.0.0.0/8\n"), "10.0.0.1", false)
	f.Add([]byte("enable_fqdn_mode = false\n"), "", true)
	f.Add([]byte("a = b\r\nc = d\r\n"), "::ffff:10.0.0.1", false)
	f.Add([]byte("x = 1\n"), "not an ip", false)
	f.Add([]byte("x = 1\n"), "10.0.0.1%eth0", false)
	f.Add([]byte("\x00\xff\xfe = \x80\n"), "10.0.0.1", false)
	// A line longer than bufio.Scanner's 64 KiB before the key: the key is
	// set, so nothing may be added.
	f.Add([]byte("long = "+strings.Repeat("x", 70_000)+"\npriority_networks = 10.0.0.0/8\n"), "10.0.0.1", false)
	f.Add([]byte(strings.Repeat("y", 70_000)+"\nenable_fqdn_mode = true\n"), "", true)
	f.Fuzz(func(t *testing.T, conf []byte, ip string, fqdn bool) {
		from, to := t.TempDir(), t.TempDir()
		if err := os.WriteFile(filepath.Join(from, "fe.conf"), conf, 0o644); err != nil {
			t.Fatal(err)
		}
		other := []byte("ldap_authentication_enabled = false\n")
		if err := os.WriteFile(filepath.Join(from, "ldap.conf"), other, 0o644); err != nil {
			t.Fatal(err)
		}
		opts := ConfOptions{From: from, To: to, File: "fe.conf", FQDN: fqdn, IPVariable: "FE_IPADDRESS"}
		getenv := env(map[string]string{"FE_IPADDRESS": ip})
		done, err := PrepareConf(opts, getenv)
		key, want := "enable_fqdn_mode", "true"
		if !fqdn {
			parsed := net.ParseIP(ip)
			if parsed == nil {
				if err == nil || !strings.Contains(err.Error(), "FE_IPADDRESS") {
					t.Fatalf("pod IP %q: error %v, want one that names FE_IPADDRESS", ip, err)
				}
				return
			}
			key, want = "priority_networks", "${FE_IPADDRESS}/128"
			if parsed.To4() != nil {
				want = "${FE_IPADDRESS}/32"
			}
		}
		if err != nil {
			t.Fatalf("pod IP %q, fqdn %v: %v", ip, fqdn, err)
		}
		if done == "" {
			t.Error("PrepareConf said nothing about what it did")
		}
		got, err := os.ReadFile(filepath.Join(to, "fe.conf"))
		if err != nil {
			t.Fatal(err)
		}
		if before := settings(conf, key); len(before) > 0 {
			if !bytes.Equal(got, conf) {
				t.Errorf("the conf set %s already (%.200q) but was changed; it ends with:\n%q", key, before, tail(got))
			}
		} else {
			if after := settings(got, key); len(after) != 1 || after[0] != want {
				t.Errorf("the prepared conf sets %s to %q, want exactly one line with %q", key, after, want)
			}
			wantEnd := fmt.Sprintf("%s = %s\n", key, want)
			if !bytes.HasPrefix(got, conf) || !bytes.HasSuffix(got, []byte(wantEnd)) {
				t.Errorf("the prepared conf does not keep every line and end with %q; it ends with:\n%q", wantEnd, tail(got))
			}
		}
		if copied, err := os.ReadFile(filepath.Join(to, "ldap.conf")); err != nil || !bytes.Equal(copied, other) {
			t.Errorf("ldap.conf was not copied as it is: %q, %v", copied, err)
		}
		if _, err := PrepareConf(opts, getenv); err != nil {
			t.Fatal(err)
		}
		if again, _ := os.ReadFile(filepath.Join(to, "fe.conf")); !bytes.Equal(again, got) {
			t.Errorf("a second run changed the conf; it ends with:\n%q\nthen with\n%q", tail(got), tail(again))
		}
	})
}
