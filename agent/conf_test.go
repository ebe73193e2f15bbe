package agent

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// TestPrepareConfGolden prepares each conf layout and compares the result
// with its golden file; running it twice must give the same result.
func TestPrepareConfGolden(t *testing.T) {
	tests := []struct {
		name, dir, file string
		opts            ConfOptions
		env             map[string]string
	}{
		{"official-fe", "official-fe", "fe.conf", ConfOptions{IPVariable: "FE_IPADDRESS"}, map[string]string{"FE_IPADDRESS": "10.244.1.7"}},
		{"official-fe-ipv6", "official-fe", "fe.conf", ConfOptions{IPVariable: "FE_IPADDRESS"}, map[string]string{"FE_IPADDRESS": "fd00:10:244::7"}},
		{"official-fe-fqdn", "official-fe", "fe.conf", ConfOptions{FQDN: true}, nil},
		{"official-be", "official-be", "be.conf", ConfOptions{IPVariable: "BE_IPADDRESS"}, map[string]string{"BE_IPADDRESS": "10.244.2.9"}},
		{"preset-fe", "preset-fe", "fe.conf", ConfOptions{IPVariable: "FE_IPADDRESS"}, map[string]string{"FE_IPADDRESS": "10.244.1.7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.From, opts.To, opts.File = filepath.Join("testdata", "conf", tt.dir), t.TempDir(), tt.file
			if _, err := PrepareConf(opts, env(tt.env)); err != nil {
				t.Fatal(err)
			}
			first, err := os.ReadFile(filepath.Join(opts.To, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := PrepareConf(opts, env(tt.env)); err != nil {
				t.Fatal(err)
			}
			second, _ := os.ReadFile(filepath.Join(opts.To, tt.file))
			if diff := cmp.Diff(string(first), string(second)); diff != "" {
				t.Errorf("a second run changed the conf (-first +second):\n%s", diff)
			}
			golden := filepath.Join("testdata", "conf", tt.name+".golden")
			if *update {
				os.WriteFile(golden, first, 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if diff := cmp.Diff(string(want), string(first)); diff != "" {
				t.Errorf("prepared conf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrepareConfCopiesEveryFile(t *testing.T) {
	to := t.TempDir()
	opts := ConfOptions{From: "testdata/conf/official-fe", To: to, File: "fe.conf", IPVariable: "FE_IPADDRESS"}
	if _, err := PrepareConf(opts, env(map[string]string{"FE_IPADDRESS": "10.0.0.1"})); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile("testdata/conf/official-fe/ldap.conf")
	got, err := os.ReadFile(filepath.Join(to, "ldap.conf"))
	if err != nil || string(got) != string(want) {
		t.Errorf("ldap.conf was not copied as it is: %q, %v", got, err)
	}
}

func TestPrepareConfErrors(t *testing.T) {
	tests := []struct {
		name string
		opts ConfOptions
		env  map[string]string
		want string
	}{
		{"no IP in the environment", ConfOptions{IPVariable: "FE_IPADDRESS"}, nil, `FE_IPADDRESS is "", not an IP address`},
		{"no variable named", ConfOptions{}, nil, "--ip-variable"},
		{"no such conf file", ConfOptions{IPVariable: "FE_IPADDRESS", File: "nope.conf"}, map[string]string{"FE_IPADDRESS": "10.0.0.1"}, "nope.conf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.From, opts.To = "testdata/conf/official-fe", t.TempDir()
			if opts.File == "" {
				opts.File = "fe.conf"
			}
			_, err := PrepareConf(opts, env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one that says %q", err, tt.want)
			}
		})
	}
}
