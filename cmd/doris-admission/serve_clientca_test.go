package main

import (
	"context"
	"testing"
)

// TestServeClientCAFlag parses --client-ca without running serve (the signal
// handler serve sets up can be set up once per process, and TestServeFlags
// runs it).
func TestServeClientCAFlag(t *testing.T) {
	cmd := newServeCommand(func(context.Context, serveOptions) error { return nil })
	// Off unless asked for: without it, no client certificate is required.
	if flag := cmd.Flags().Lookup("client-ca"); flag == nil || flag.DefValue != "" {
		t.Fatalf("--client-ca is missing or on by default: %+v", flag)
	}
	if err := cmd.ParseFlags([]string{"--client-ca", "/etc/kubernetes/pki/front-proxy-ca.crt"}); err != nil {
		t.Fatal(err)
	}
	if got, err := cmd.Flags().GetString("client-ca"); err != nil || got != "/etc/kubernetes/pki/front-proxy-ca.crt" {
		t.Errorf("--client-ca gave %q, %v", got, err)
	}
}
