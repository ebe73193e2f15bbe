// Package harness is what the end-to-end tests, the benchmarks and the demo
// share to run doris-admission: free loopback ports, and the server binary
// started, waited for and stopped. It is not product: internal, importable
// only from inside this repository.
package harness

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// FreeAddress returns host:port with a port nobody listens on now.
func FreeAddress(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("finding a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// FreePort returns a port nobody listens on now on host.
func FreePort(host string) (int, error) {
	addr, err := FreeAddress(host)
	if err != nil {
		return 0, err
	}
	_, port, _ := net.SplitHostPort(addr)
	return strconv.Atoi(port)
}

// Server is a running `doris-admission serve`.
type Server struct {
	Cmd *exec.Cmd
	// LogPath holds what it printed; ProbeAddr and MetricsAddr are where
	// it serves /readyz and /metrics.
	LogPath, ProbeAddr, MetricsAddr string
	exited                          chan struct{}
	exitErr                         error
}

// StartServer runs bin serve with args, its probes and metrics on free
// loopback ports, env added to the environment and its output going to
// logPath. It runs in its own process group, so a Ctrl-C in the terminal
// reaches only the caller, which then stops the server.
func StartServer(bin, logPath string, env []string, args ...string) (*Server, error) {
	probeAddr, err := FreeAddress("127.0.0.1")
	if err != nil {
		return nil, err
	}
	metricsAddr, err := FreeAddress("127.0.0.1")
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	args = append([]string{"serve", "--health-probe-bind-address", probeAddr, "--metrics-bind-address", metricsAddr}, args...)
	s := &Server{Cmd: exec.Command(bin, args...), LogPath: logPath, ProbeAddr: probeAddr, MetricsAddr: metricsAddr, exited: make(chan struct{})}
	s.Cmd.Stdout, s.Cmd.Stderr = logFile, logFile
	s.Cmd.Env = append(os.Environ(), env...)
	s.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() { s.exitErr = s.Cmd.Wait(); close(s.exited) }()
	return s, nil
}

// WaitReady polls /readyz until it answers 200; it fails, with the
// server's log, when the server exits first or timeout passes.
func (s *Server) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("doris-admission serve exited before it was ready (%v); its log:\n%s", s.exitErr, s.Log())
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.ProbeAddr+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("doris-admission serve was not ready (/readyz on %s) within %s; its log:\n%s", s.ProbeAddr, timeout, s.Log())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Exited is closed when the server has exited; ExitErr then says how.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// ExitErr is how the server exited, once Exited is closed.
func (s *Server) ExitErr() error { return s.exitErr }

// Stop sends SIGTERM and waits for the server to exit, killing it after
// timeout; it returns how it exited. A server that exited already is left.
func (s *Server) Stop(timeout time.Duration) error {
	select {
	case <-s.exited:
		return s.exitErr
	default:
	}
	if err := s.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-s.exited:
		return s.exitErr
	case <-time.After(timeout):
		s.Cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("doris-admission serve did not stop within %s of SIGTERM and was killed", timeout)
	}
}

// Log returns what the server printed so far.
func (s *Server) Log() string {
	data, err := os.ReadFile(s.LogPath)
	if err != nil {
		return err.Error()
	}
	return string(data)
}
