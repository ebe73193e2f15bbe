package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/doris-admission/doris-admission/internal/harness"
)

// serverProcess is a running `doris-admission serve`.
type serverProcess struct {
	*harness.Server
}

// startServerProcess starts bin serve with args, with env added to the
// environment, its log in workDir, and waits until /readyz answers 200.
func startServerProcess(bin, workDir string, env []string, args ...string) (*serverProcess, error) {
	logFile, err := os.CreateTemp(workDir, "server-*.log")
	if err != nil {
		return nil, err
	}
	logFile.Close()
	server, err := harness.StartServer(bin, logFile.Name(), env, args...)
	if err != nil {
		return nil, err
	}
	if err := server.WaitReady(context.Background(), time.Minute); err != nil {
		server.Stop(30 * time.Second)
		return nil, err
	}
	return &serverProcess{server}, nil
}

// stop ends the process however it can, and says so when it did not stop
// cleanly.
func (s *serverProcess) stop() {
	select {
	case <-s.Exited():
		return // stopped already, by the test
	default:
	}
	if err := s.Stop(30 * time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: doris-admission stopped with %v\nserver log:\n%s\n", err, s.Log())
	}
}

// metrics scrapes /metrics and returns the families by name.
func (s *serverProcess) metrics(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.MetricsAddr+"/metrics", nil)
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
