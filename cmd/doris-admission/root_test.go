package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHelpListsOnlyWorkingCommands(t *testing.T) {
	var out bytes.Buffer
	root := newRootCommand()
	root.SetOut(&out)
	root.SetArgs([]string{"--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, c := range root.Commands() {
		if c.IsAvailableCommand() {
			listed = append(listed, c.Name())
		}
	}
	if diff := cmp.Diff([]string{"audit", "certs", "completion", "expose-be", "mutate", "playground", "policy", "serve", "validate", "version"}, listed); diff != "" {
		t.Errorf("commands listed by --help (-want +got):\n%s", diff)
	}
	for _, name := range listed {
		if !strings.Contains(out.String(), "  "+name) {
			t.Errorf("--help output does not list %q:\n%s", name, out.String())
		}
	}
}

func TestVersionPrintsTheStampedVersion(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "v1.2.3"
	var out bytes.Buffer
	root := newRootCommand()
	root.SetOut(&out)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "doris-admission v1.2.3 (go") {
		t.Errorf("version printed %q", out.String())
	}
}

func TestServeFlags(t *testing.T) {
	var got serveOptions
	cmd := newServeCommand(func(_ context.Context, opts serveOptions) error {
		got = opts
		return nil
	})
	cmd.SetArgs([]string{"--cert-dir", "/certs", "--port", "10250", "--host", "127.0.0.1",
		"--metrics-bind-address", "0", "--health-probe-bind-address", ":9000", "--shutdown-timeout", "5s"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	want := []any{"/certs", 10250, "127.0.0.1", "0", ":9000", 5 * time.Second}
	have := []any{got.webhook.CertDir, got.webhook.Port, got.webhook.Host, got.metricsAddress, got.probeAddress, got.shutdownTimeout}
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("serve options (-want +got):\n%s", diff)
	}
}

func TestServeRejectsArguments(t *testing.T) {
	cmd := newServeCommand(func(context.Context, serveOptions) error { return nil })
	cmd.SetArgs([]string{"extra"})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	if err := cmd.Execute(); err == nil {
		t.Error("serve accepted a positional argument")
	}
}
