package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
)

type statusOptions struct {
	IO     *iostreams
	Client func() (*client.Client, error)
	JSON   bool

	JobID string
}

func newCmdStatus(f *factory, runF func(*statusOptions) error) *cobra.Command {
	opts := &statusOptions{IO: f.io, Client: f.authClient}
	return &cobra.Command{
		Use:               "status JOB",
		Short:             "Show a job",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeIDs(f, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.flags.json
			opts.JobID = args[0]
			if runF != nil {
				return runF(opts)
			}
			return statusRun(cmd.Context(), opts)
		},
	}
}

func statusRun(ctx context.Context, opts *statusOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	j, err := c.Job(ctx, opts.JobID)
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.out, newJobJSON(j))
	}
	tw := tabwriter.NewWriter(opts.IO.out, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "ID:\t%s\n", j.ID)
	fmt.Fprintf(tw, "State:\t%s\n", j.State)
	fmt.Fprintf(tw, "Progress:\t%d%%\n", j.Progress)
	fmt.Fprintf(tw, "File:\t%s (%s)\n", j.Filename, humanBytes(j.Size))
	if j.MP3FID != "" {
		fmt.Fprintf(tw, "MP3:\t%s\n", j.MP3FID)
	}
	if j.Error != "" {
		fmt.Fprintf(tw, "Error:\t%s\n", j.Error)
	}
	if o := optionsText(j.Options); o != "" {
		fmt.Fprintf(tw, "Options:\t%s\n", o)
	}
	fmt.Fprintf(tw, "Created:\t%s\n", j.CreatedAt.Local().Format(time.DateTime))
	if j.FinishedAt != nil {
		fmt.Fprintf(tw, "Finished:\t%s\n", j.FinishedAt.Local().Format(time.DateTime))
	}
	switch {
	case j.Expired:
		fmt.Fprintf(tw, "Expired:\tits files were deleted\n")
	case j.ExpiresAt != nil:
		fmt.Fprintf(tw, "Expires:\t%s\n", j.ExpiresAt.Local().Format(time.DateTime))
	}
	return tw.Flush()
}
