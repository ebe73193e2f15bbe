package e2e

import (
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/doris-admission/doris-admission/internal/harness"
)

// TestRollingRestartLosesNothing runs two replicas behind one address, as a
// Service would put them, with failurePolicy Fail, and restarts them one
// after the other while kubectl applies go through without pause: not one
// apply fails.
func TestRollingRestartLosesNothing(t *testing.T) {
	const config = "rolling-e2e"
	lb, err := newBalancer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lb.close)
	ca := base64.StdEncoding.EncodeToString(suite.env.WebhookInstallOptions.LocalServingCAData)
	manifest := strings.ReplaceAll(webhookConfigurations(config, lb.addr), "clientConfig: {url:", "clientConfig: {caBundle: "+ca+", url:")
	if out, err := suite.apply(manifest); err != nil {
		t.Fatalf("creating the webhook configurations: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration", config) })

	start := func() *serverProcess {
		t.Helper()
		addr, err := harness.FreeAddress("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		host, port, _ := strings.Cut(addr, ":")
		s, err := startServerProcess(suite.serverBin, suite.workDir, nil,
			"--kubeconfig", suite.kubeconfig, "--cert-dir", suite.env.WebhookInstallOptions.LocalServingCertDir,
			"--host", host, "--port", port, "--webhook-configuration", config, "--audit=false", "--shutdown-delay", "2s")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.stop)
		lb.add(addr, s.ProbeAddr)
		return s
	}
	replicas := []*serverProcess{start(), start()}
	eventually(t, 15*time.Second, func() string {
		rules, _ := suite.kubectl("get", "mutatingwebhookconfiguration", config, "-o", "jsonpath={.webhooks[*].rules[*].resources}")
		if !strings.Contains(rules, "statefulsets") {
			return "the replicas did not set their rules: " + rules
		}
		return ""
	})
	t.Cleanup(func() { suite.kubectl("delete", "statefulset", "rolling-fe", "--ignore-not-found") })

	// Apply without pause until told to stop.
	var applies, failures atomic.Int64
	var failed []string
	var mu sync.Mutex
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			out, err := suite.apply(plainFE("rolling-fe", "default", i))
			applies.Add(1)
			if err != nil {
				failures.Add(1)
				mu.Lock()
				failed = append(failed, out)
				mu.Unlock()
			}
		}
	}()

	// Replace each replica by a new one, as a rolling update does: the new
	// one first, then SIGTERM to the old one, which must drain.
	for i, old := range replicas {
		time.Sleep(time.Second)
		start()
		if err := old.Stop(30 * time.Second); err != nil {
			t.Errorf("replica %d did not stop cleanly: %v\n%s", i, err, old.Log())
		}
		lb.remove(old.ProbeAddr)
	}
	time.Sleep(time.Second)
	close(stop)
	<-done
	if failures.Load() > 0 || applies.Load() < 10 {
		t.Errorf("%d of %d applies failed during the rolling restart:\n%s", failures.Load(), applies.Load(), strings.Join(failed, "\n"))
	}
	t.Logf("%d applies through a rolling restart of two replicas, %d failed", applies.Load(), failures.Load())
}

// balancer is a TCP load balancer like a Service's: it sends each new
// connection to a backend that reports ready, in turn.
type balancer struct {
	addr     string
	listener net.Listener
	mu       sync.Mutex
	backends []*backend
	next     int
	quit     chan struct{}
}

type backend struct {
	addr, probeAddr string
	ready           atomic.Bool
}

func newBalancer() (*balancer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &balancer{addr: l.Addr().String(), listener: l, quit: make(chan struct{})}
	go b.accept()
	go b.probe()
	return b, nil
}

func (b *balancer) add(addr, probeAddr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = append(b.backends, &backend{addr: addr, probeAddr: probeAddr})
}

func (b *balancer) remove(probeAddr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, be := range b.backends {
		if be.probeAddr == probeAddr {
			b.backends = append(b.backends[:i], b.backends[i+1:]...)
			return
		}
	}
}

// probe marks backends ready or not from their /readyz, as endpoints follow
// a pod's readiness.
func (b *balancer) probe() {
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-b.quit:
			return
		case <-time.After(100 * time.Millisecond):
		}
		b.mu.Lock()
		backends := append([]*backend(nil), b.backends...)
		b.mu.Unlock()
		for _, be := range backends {
			resp, err := client.Get("http://" + be.probeAddr + "/readyz")
			ready := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				resp.Body.Close()
			}
			be.ready.Store(ready)
		}
	}
}

func (b *balancer) pick() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for range b.backends {
		be := b.backends[b.next%len(b.backends)]
		b.next++
		if be.ready.Load() {
			return be.addr, nil
		}
	}
	return "", errors.New("no ready backend")
}

func (b *balancer) accept() {
	for {
		conn, err := b.listener.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			addr, err := b.pick()
			if err != nil {
				return
			}
			upstream, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer upstream.Close()
			go func() {
				io.Copy(upstream, conn)
				upstream.(*net.TCPConn).CloseWrite()
			}()
			io.Copy(conn, upstream)
		}()
	}
}

func (b *balancer) close() {
	close(b.quit)
	b.listener.Close()
}
