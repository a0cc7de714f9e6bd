package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
)

type waitOptions struct {
	IO     *iostreams
	Client func() (*client.Client, error)
	JSON   bool

	JobID   string
	Timeout time.Duration // 0: no limit
}

func newCmdWait(f *factory, runF func(*waitOptions) error) *cobra.Command {
	opts := &waitOptions{IO: f.io, Client: f.authClient}
	cmd := &cobra.Command{
		Use:               "wait JOB",
		Short:             "Wait until a job is done or failed",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeIDs(f, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.flags.json
			opts.JobID = args[0]
			if runF != nil {
				return runF(opts)
			}
			return waitRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", DefaultWaitTimeout, "give up after this long (0: no limit)")
	return cmd
}

func waitRun(ctx context.Context, opts *waitOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	j, err := waitJob(ctx, newProgress(opts.IO, opts.JSON), c, opts.JobID, opts.Timeout)
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.out, newJobJSON(j))
	}
	fmt.Fprintf(opts.IO.out, "%s %s %s\n", j.ID, j.State, j.MP3FID)
	return nil
}
