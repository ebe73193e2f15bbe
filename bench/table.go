package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one line of the table: a measure of doris-admission next to its
// baseline, measured in the same run.
type Row struct {
	// ID names the row for tests: section/scenario/measure.
	ID       string
	Section  string
	Scenario string
	Measure  string
	Ours     string
	Baseline string
	Ratio    string
	Target   string
	// Met is "yes", "no", or why the target cannot be judged.
	Met string
}

// Table is the result of a run.
type Table struct {
	Rows []Row
	// Notes are printed under the table.
	Notes []string
}

// Fprint writes the table, then its notes.
func (t *Table) Fprint(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "section\tscenario\tmeasure\tdoris-admission\tbaseline (same run)\tratio\ttarget\tmet")
	for _, r := range t.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Section, r.Scenario, r.Measure, r.Ours, dash(r.Baseline), dash(r.Ratio), dash(r.Target), dash(r.Met))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range t.Notes {
		if _, err := fmt.Fprintln(w, "note: "+n); err != nil {
			return err
		}
	}
	return nil
}

// String is the printed table.
func (t *Table) String() string {
	var b strings.Builder
	t.Fprint(&b)
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func mib(b uint64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func ratio(r float64) string {
	return fmt.Sprintf("%.2fx", r)
}

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}
