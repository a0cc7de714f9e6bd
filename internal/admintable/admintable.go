// Package admintable prints the administrators' listings (everyone's jobs, dead letters) the
// way both v2m admin and v2md admin do: an aligned table for a terminal, tab-separated lines
// without a header for scripts (times in RFC 3339), or JSON.
package admintable

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/v2m/v2m/pkg/wire"
)

// Format is how to print.
type Format int

// The formats.
const (
	TSV   Format = iota // tab-separated, no header: for scripts
	Table               // aligned, with a header: for a terminal
	JSON                // the API's objects
)

// field is s as one field of a line: tabs and line breaks become spaces.
func field(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func when(t time.Time, f Format) string {
	if f == Table {
		return t.Local().Format("2006-01-02 15:04")
	}
	return t.UTC().Format(time.RFC3339)
}

// rows prints header (for a table) and the rows, fields joined by tabs.
func rows(w io.Writer, f Format, header string, lines [][]string) error {
	if f == TSV {
		for _, l := range lines {
			if _, err := fmt.Fprintln(w, strings.Join(l, "\t")); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, l := range lines {
		fmt.Fprintln(tw, strings.Join(l, "\t"))
	}
	return tw.Flush()
}

// Jobs prints everyone's jobs: id, state, owner, file, created, error.
func Jobs(w io.Writer, f Format, js []wire.AdminJob) error {
	if f == JSON {
		return printJSON(w, wire.AdminJobList{Jobs: js})
	}
	lines := make([][]string, 0, len(js))
	for _, j := range js {
		lines = append(lines, []string{j.ID, j.State, field(j.Owner), field(j.Filename), when(j.CreatedAt, f), field(j.Error)})
	}
	return rows(w, f, "ID\tSTATE\tOWNER\tFILE\tCREATED\tERROR", lines)
}

// Letters prints dead letters: id, topic, job, owner, attempts, when, reason.
func Letters(w io.Writer, f Format, ls []wire.DeadLetter) error {
	if f == JSON {
		return printJSON(w, wire.DeadLetterList{Letters: ls})
	}
	lines := make([][]string, 0, len(ls))
	for _, l := range ls {
		job := l.JobID
		if job == "" {
			job = "-"
		}
		lines = append(lines, []string{field(l.ID), l.Topic, job, field(l.Owner), fmt.Sprint(l.Attempts), when(l.DeadAt, f), field(l.Reason)})
	}
	return rows(w, f, "ID\tTOPIC\tJOB\tOWNER\tATTEMPTS\tDEAD SINCE\tREASON", lines)
}

// Replayed prints a replay's outcome to out (the letters replayed) and errOut (those that
// were not, and why), and returns an error when any was not.
func Replayed(out, errOut io.Writer, f Format, res *wire.ReplayResult) error {
	if f == JSON {
		if err := printJSON(out, res); err != nil {
			return err
		}
	} else {
		for _, id := range res.Replayed {
			fmt.Fprintf(out, "replayed %s\n", id)
		}
		for _, fl := range res.Failed {
			fmt.Fprintf(errOut, "not replayed %s: %s\n", fl.ID, fl.Error)
		}
	}
	if len(res.Failed) > 0 {
		return fmt.Errorf("%d of %d dead letters not replayed", len(res.Failed), len(res.Failed)+len(res.Replayed))
	}
	return nil
}

// Purged prints how many letters a purge removed.
func Purged(w io.Writer, f Format, n int) error {
	if f == JSON {
		return printJSON(w, wire.PurgeResult{Purged: n})
	}
	_, err := fmt.Fprintf(w, "purged %d dead letters\n", n)
	return err
}
