package main

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer a command writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestPlaygroundPrintsItsAddress: playground says where the page is, the
// page is there, and the command ends with its context.
func TestPlaygroundPrintsItsAddress(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out lockedBuffer
	root := newRootCommand()
	root.SetOut(&out)
	root.SetArgs([]string{"playground", "--port", "0", "--suites", t.TempDir()})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	address := regexp.MustCompile(`open (http://127\.0\.0\.1:\d+/) in a browser`)
	deadline := time.Now().Add(10 * time.Second)
	for address.FindStringSubmatch(out.String()) == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	m := address.FindStringSubmatch(out.String())
	if m == nil {
		cancel()
		t.Fatalf("playground printed no address: %q", out.String())
	}
	resp, err := http.Get(m[1])
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %v %v", m[1], resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("playground ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("playground did not stop when its context ended")
	}
}
