package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireAssets returns KUBEBUILDER_ASSETS, failing the test without it:
// the demo needs a control plane, and a skipped test would hide that.
func requireAssets(t *testing.T) string {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test`, which builds kube-apiserver, etcd and kubectl from source, or set it to the folder test/controlplane/build.sh prints")
	}
	return assets
}

// buildDemo compiles this program, as `go run ./hack/demo` does.
func buildDemo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "demo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building the demo: %v\n%s", err, out)
	}
	return bin
}

// demoCommand runs the demo with its temporary files in a folder of its own,
// so the test can check it removed them.
func demoCommand(ctx context.Context, t *testing.T, keep bool) (*exec.Cmd, string) {
	assets := requireAssets(t)
	bin := buildDemo(t)
	tmp := t.TempDir()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "KUBEBUILDER_ASSETS="+assets, "TMPDIR="+tmp, "DEMO_KEEP=")
	if keep {
		cmd.Env = append(cmd.Env, "DEMO_KEEP=1")
	}
	// Like Ctrl-C in a terminal, a cancelled test interrupts the demo, so it
	// still stops what it started.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 2 * time.Minute
	return cmd, tmp
}

// assertRemoved checks the demo left nothing in its temporary folder.
func assertRemoved(t *testing.T, tmp string) {
	t.Helper()
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if len(left) > 0 {
		t.Errorf("the demo left temporary files in %s: %s", tmp, strings.Join(left, ", "))
	}
}

// TestDemo runs the demo end to end, as `make demo` does, and checks it
// explains what the webhook added to the Doris StatefulSets and what it
// refused and why, then stops and cleans up by itself.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	cmd, tmp := demoCommand(ctx, t, false)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the demo failed: %v\n%s", err, out.String())
	}
	output := out.String()
	for _, want := range []string{
		// The server made its own certificates and injected its CA.
		"created the Secret doris-admission/doris-admission-tls with a CA",
		"127.0.0.1,\n",
		"put that CA in the caBundle of both webhook configurations",
		// Injected, read back from the API server.
		"StatefulSet default/doris-fe. As applied it has 1 container, no env variables",
		"to container doris-fe:\n       + env FE_IPADDRESS = the pod's IP (status.podIP)",
		"+ postStart hook, run when the container starts: /opt/doris-admission/bin/doris-admission-agent fe-register",
		"+ startupProbe: TCP connect to port 9030 every 5 s; after 72 failures in a row (360 s) it restarts the container",
		"+ readinessProbe: HTTP GET /api/health on port 8030",
		"+ init container doris-admission-agent (image doris-admission/doris-admission-agent:latest): doris-admission-agent install --to /opt/doris-admission/bin",
		"+ terminationGracePeriodSeconds: 120 (the file leaves it out, which would mean 30)",
		"+ env FE_MASTER_IP = \"doris-fe.default.svc.cluster.local\"",
		"+ preStop hook, run before the container is stopped: /opt/doris-admission/bin/doris-admission-agent be-decommission",
		"+ terminationGracePeriodSeconds: 3600",
		// The valid plan passes.
		"service/doriscluster-sample-fe-service created",
		// Rejected, with the reasons.
		"- Service default/doris-be was rejected by the webhook fail.mutate.doris-admission.io and not created:\n",
		`       spec.ports: nodePort 32130 is already used by Service default/doris-fe (port "http")`,
		`       spec.ports: nodePort 40000 (port "heartbeat") is outside the allowed range 30000-32767`,
		"- Service default/doris-be-debug was rejected by the webhook fail.mutate.doris-admission.io and not created:\n",
		`       spec.ports: nodePort 31201 is used by ports "web" and "brpc" of this Service`,
		"The rest of the file was applied: service/doris-fe configured.",
		"Stopping the server, kube-apiserver and etcd",
	} {
		if !strings.Contains(output, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, output)
		}
	}
	if strings.Contains(output, "added nothing") {
		t.Errorf("the demo says the webhook added nothing:\n%s", output)
	}
	for _, line := range strings.Split(output, "\n") {
		if strings.HasPrefix(line, "   | ") && strings.Contains(line, "already allocated") {
			t.Errorf("kubectl shows the API server's allocator answering, not the node-ports policy: %s", line)
		}
	}
	assertRemoved(t, tmp)
}

// TestDemoKeepUntilCtrlC runs the demo with DEMO_KEEP=1: the cluster stays up
// for kubectl with the kubeconfig it prints, until Ctrl-C stops everything.
func TestDemoKeepUntilCtrlC(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	cmd, tmp := demoCommand(ctx, t, true)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
	}()
	var output []string
	waitFor := func(prefix string) {
		t.Helper()
		for line := range lines {
			output = append(output, line)
			if strings.HasPrefix(line, prefix) {
				return
			}
		}
		cmd.Wait()
		t.Fatalf("the demo ended before printing %q:\n%s\n%s", prefix, strings.Join(output, "\n"), stderr.String())
	}
	waitFor("Press Ctrl-C to stop everything")

	var kubeconfig, kubectl string
	for _, line := range output {
		if m := regexp.MustCompile(`^   export KUBECONFIG=(\S+)$`).FindStringSubmatch(line); m != nil {
			kubeconfig = m[1]
		}
		if m := regexp.MustCompile(`^   (\S+/kubectl) get statefulset doris-be -o yaml$`).FindStringSubmatch(line); m != nil {
			kubectl = m[1]
		}
	}
	if kubeconfig == "" || kubectl == "" {
		t.Fatalf("the demo did not print a kubeconfig and a kubectl command to try:\n%s", strings.Join(output, "\n"))
	}
	get := exec.Command(kubectl, "get", "statefulsets", "-n", "default", "-o", "name", "--request-timeout=10s")
	get.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	got, err := get.CombinedOutput()
	if err != nil || !slices.Equal(strings.Fields(string(got)), []string{"statefulset.apps/doris-be", "statefulset.apps/doris-fe"}) {
		t.Errorf("kubectl with the printed kubeconfig: %v\n%s", err, got)
	}

	// Still running: --keep waits for Ctrl-C.
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("the demo ended without a Ctrl-C:\n%s\n%s", strings.Join(output, "\n"), stderr.String())
		}
		output = append(output, line)
	case <-time.After(time.Second):
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for line := range lines {
		output = append(output, line)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("the demo did not end cleanly on Ctrl-C: %v\n%s\n%s", err, strings.Join(output, "\n"), stderr.String())
	}
	if !strings.HasPrefix(output[len(output)-1], "Stopping the server, kube-apiserver and etcd") {
		t.Errorf("the demo did not say it stops everything:\n%s", strings.Join(output, "\n"))
	}
	if _, err := os.Stat(kubeconfig); !os.IsNotExist(err) {
		t.Errorf("the kubeconfig %s is still there after Ctrl-C (%v)", kubeconfig, err)
	}
	if conn, err := net.DialTimeout("tcp", apiServerAddress(t, output), 5*time.Second); err == nil {
		conn.Close()
		t.Errorf("kube-apiserver still listens after Ctrl-C")
	}
	assertRemoved(t, tmp)
}

// apiServerAddress is the host:port of the API server the demo printed.
func apiServerAddress(t *testing.T, output []string) string {
	t.Helper()
	for _, line := range output {
		if m := regexp.MustCompile(`^   Up at https://([^/\s]+)/? in `).FindStringSubmatch(line); m != nil {
			return m[1]
		}
	}
	t.Fatalf("the demo did not print the API server's address:\n%s", strings.Join(output, "\n"))
	return ""
}

func TestParseRejections(t *testing.T) {
	for _, tt := range []struct {
		name, output string
		want         []rejection
	}{
		{
			name: "the webhook's causes, separated by semicolons",
			output: "service/doris-fe configured\n" +
				`Error from server (Invalid): error when creating "x.yaml": admission webhook "mutate.doris-admission.io" denied the request: Service default/doris-be-debug is invalid: spec.ports: nodePort 31201 is used by ports "web" and "brpc" of this Service (policy node-ports); spec.ports: port "brpc" has port 70000 and targetPort 8060; both must be in 1..65535 (policy node-ports)` + "\n",
			want: []rejection{{kind: "Service", namespace: "default", name: "doris-be-debug", by: "mutate.doris-admission.io", reasons: []string{
				`spec.ports: nodePort 31201 is used by ports "web" and "brpc" of this Service (policy node-ports)`,
				`spec.ports: port "brpc" has port 70000 and targetPort 8060; both must be in 1..65535 (policy node-ports)`,
			}}},
		},
		{
			name:   "the API server's own validation, in brackets",
			output: `Error from server (Invalid): error when creating "x.yaml": Service "web" is invalid: [spec.ports[0].nodePort: Invalid value: 99999: provided port is not in the valid range, spec.ports[1].port: Required value]`,
			want: []rejection{{kind: "Service", name: "web", reasons: []string{
				"spec.ports[0].nodePort: Invalid value: 99999: provided port is not in the valid range",
				"spec.ports[1].port: Required value",
			}}},
		},
		{
			name:   "a refusal it cannot take apart is kept whole",
			output: `Error from server (InternalError): error when creating "x.yaml": Internal error occurred: failed calling webhook`,
			want:   []rejection{{reasons: []string{"Internal error occurred: failed calling webhook"}}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := parseRejections(tt.output)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d rejections, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.kind != w.kind || g.namespace != w.namespace || g.name != w.name || g.by != w.by || !slices.Equal(g.reasons, w.reasons) {
					t.Errorf("got %+v\nwant %+v", g, w)
				}
			}
		})
	}
}
