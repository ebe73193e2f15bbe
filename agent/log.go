package agent

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// logPrefix starts every line the agent writes, so users can grep for it.
const logPrefix = "doris-admission agent: "

// Logger writes the agent's lines to its own output and, when it can, to the
// container's main output: hook output does not reach `kubectl logs`, the
// main process's does.
type Logger struct {
	writers []io.Writer
}

// NewLogger logs to w and to every extra writer.
func NewLogger(w io.Writer, extra ...io.Writer) *Logger {
	return &Logger{writers: append([]io.Writer{w}, extra...)}
}

// MainOutput opens the output of the container's main process (what
// kubectl logs shows), or returns nil when it cannot be written.
func MainOutput() io.Writer {
	f, err := os.OpenFile(filepath.Join(mainProcess("/proc"), "fd", "1"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil
	}
	return f
}

// mainProcess is the /proc folder of the container's main process: the
// first process in this process's cgroup, which is the container's. That is
// PID 1, unless the pod shares one process namespace between its containers
// (shareProcessNamespace), where PID 1 is the pod's pause process.
func mainProcess(proc string) string {
	first := filepath.Join(proc, "1")
	own, err := os.ReadFile(filepath.Join(proc, "self", "cgroup"))
	if err != nil {
		return first
	}
	entries, _ := os.ReadDir(proc)
	lowest := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || (lowest != 0 && pid >= lowest) {
			continue
		}
		if cgroup, err := os.ReadFile(filepath.Join(proc, e.Name(), "cgroup")); err == nil && bytes.Equal(cgroup, own) {
			lowest = pid
		}
	}
	if lowest == 0 {
		return first
	}
	return filepath.Join(proc, strconv.Itoa(lowest))
}

// Printf writes one line.
func (l *Logger) Printf(format string, args ...any) {
	line := time.Now().UTC().Format(time.RFC3339) + " " + logPrefix + fmt.Sprintf(format, args...) + "\n"
	for _, w := range l.writers {
		io.WriteString(w, line)
	}
}

// driverLog gives the MySQL driver's complaints (a connection cut in the
// middle of an answer, say) the agent's prefix, instead of the driver's own
// "[mysql]" lines on stderr.
type driverLog struct{ log *Logger }

func (d driverLog) Print(v ...any) {
	d.log.Printf("MySQL driver: %s", strings.TrimSpace(fmt.Sprint(v...)))
}
