package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// serverProcess is a running `doris-admission serve`.
type serverProcess struct {
	cmd         *exec.Cmd
	logPath     string
	metricsAddr string
	probeAddr   string
	exited      chan struct{}
	exitErr     error
}

// startServerProcess starts bin serve with args plus free metrics and probe
// ports, with env added to the environment, and waits until /readyz answers 200.
func startServerProcess(bin, workDir string, env []string, args ...string) (*serverProcess, error) {
	metricsAddr, err := freeAddress()
	if err != nil {
		return nil, err
	}
	probeAddr, err := freeAddress()
	if err != nil {
		return nil, err
	}
	logFile, err := os.CreateTemp(workDir, "server-*.log")
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	args = append([]string{"serve", "--metrics-bind-address", metricsAddr, "--health-probe-bind-address", probeAddr}, args...)
	s := &serverProcess{
		cmd:         exec.Command(bin, args...),
		logPath:     logFile.Name(),
		metricsAddr: metricsAddr,
		probeAddr:   probeAddr,
		exited:      make(chan struct{}),
	}
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.Env = append(os.Environ(), env...)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting doris-admission: %w", err)
	}
	go func() { s.exitErr = s.cmd.Wait(); close(s.exited) }()
	if err := s.waitReady(time.Minute); err != nil {
		s.stop()
		return nil, fmt.Errorf("%w\nserver log:\n%s", err, s.log())
	}
	return s, nil
}

// waitReady polls /readyz until it answers 200, the process exits or the timeout passes.
func (s *serverProcess) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("doris-admission exited before it was ready: %v", s.exitErr)
		default:
		}
		if resp, err := http.Get("http://" + s.probeAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("doris-admission did not become ready in time")
}

// terminate sends SIGTERM and waits for the process to exit, returning its exit error.
func (s *serverProcess) terminate(timeout time.Duration) error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-s.exited:
		return s.exitErr
	case <-time.After(timeout):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("doris-admission did not exit within %s of SIGTERM", timeout)
	}
}

// stop ends the process however it can.
func (s *serverProcess) stop() {
	select {
	case <-s.exited:
		return // stopped already, by the test
	default:
	}
	if err := s.terminate(30 * time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: doris-admission stopped with %v\nserver log:\n%s\n", err, s.log())
	}
}

// log returns what the server printed so far.
func (s *serverProcess) log() string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	return string(data)
}

// metrics scrapes /metrics and returns the families by name.
func (s *serverProcess) metrics(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.metricsAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(bytes.NewReader(body))
}

// freeAddress returns a loopback address with a port nobody listens on.
func freeAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// counter returns the sum of the series of the counter name that have the
// given labels (and any others), 0 when there are none.
func (s *serverProcess) counter(ctx context.Context, name string, labels map[string]string) (float64, error) {
	families, err := s.metrics(ctx)
	if err != nil {
		return 0, fmt.Errorf("scraping /metrics: %w", err)
	}
	family, ok := families[name]
	if !ok {
		return 0, nil
	}
	sum := 0.0
	for _, m := range family.GetMetric() {
		if hasLabels(m, labels) {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum, nil
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	found := 0
	for _, l := range m.GetLabel() {
		if value, ok := want[l.GetName()]; ok {
			if value != l.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(want)
}
