package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
)

type jobsOptions struct {
	IO     *iostreams
	Client func() (*client.Client, error)
	JSON   bool
}

func newCmdJobs(f *factory, runF func(*jobsOptions) error) *cobra.Command {
	opts := &jobsOptions{IO: f.io, Client: f.authClient}
	return &cobra.Command{
		Use:   "jobs",
		Short: "List your jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.JSON = f.flags.json
			if runF != nil {
				return runF(opts)
			}
			return jobsRun(cmd.Context(), opts)
		},
	}
}

func jobsRun(ctx context.Context, opts *jobsOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	jobs, err := c.Jobs(ctx)
	if err != nil {
		return err
	}
	if opts.JSON {
		out := jobsJSON{Jobs: make([]jobJSON, 0, len(jobs))}
		for i := range jobs {
			out.Jobs = append(out.Jobs, *newJobJSON(&jobs[i]))
		}
		return printJSON(opts.IO.out, out)
	}
	if !opts.IO.stdoutTTY {
		// For scripts, as gh does: tab-separated, no header, no padding, times in RFC 3339.
		for _, j := range jobs {
			fmt.Fprintf(opts.IO.out, "%s\t%s\t%d\t%s\t%s\n", j.ID, j.State, j.Progress, tsvField(j.Filename),
				j.CreatedAt.UTC().Format(time.RFC3339))
		}
		return nil
	}
	tw := tabwriter.NewWriter(opts.IO.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tPROGRESS\tFILE\tCREATED")
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%s\t%d%%\t%s\t%s\n", j.ID, j.State, j.Progress, tsvField(j.Filename), j.CreatedAt.Local().Format("2006-01-02 15:04"))
	}
	return tw.Flush()
}

// tsvField is s as one field of a tab-separated line: tabs and line breaks, which would break
// the line into more fields or lines, become spaces.
func tsvField(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}
