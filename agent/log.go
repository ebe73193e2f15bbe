package agent

import (
	"fmt"
	"io"
	"os"
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

// MainOutput opens the container's main process output (/proc/1/fd/1), or
// returns nil when it cannot be written.
func MainOutput() io.Writer {
	f, err := os.OpenFile("/proc/1/fd/1", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil
	}
	return f
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
