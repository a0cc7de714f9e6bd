package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
)

type rmOptions struct {
	IO      *iostreams
	Client  func() (*client.Client, error)
	Message func(code int, err error) string // what the user reads of an error
	JSON    bool

	IDs []string
}

func newCmdRm(f *factory, runF func(*rmOptions) error) *cobra.Command {
	opts := &rmOptions{IO: f.io, Client: f.authClient, Message: f.message}
	return &cobra.Command{
		Use:     "rm JOB...",
		Aliases: []string{"remove", "delete"},
		Short:   "Delete jobs with their video and MP3s",
		Long: "rm deletes each job, whatever its state, with its uploaded video and its MP3s, for good.\n" +
			"A job being converted stops. It exits non-zero if any job could not be deleted, naming it.",
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeIDs(f, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.flags.json
			opts.IDs = args
			if runF != nil {
				return runF(opts)
			}
			return rmRun(cmd.Context(), opts)
		},
	}
}

// rmJSON is printed by rm --json: one entry per job, in the order given.
type rmJSON struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
	Error   string `json:"error,omitempty"`
}

func rmRun(ctx context.Context, opts *rmOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	var out []rmJSON
	var first error
	failed := 0
	for _, id := range opts.IDs {
		err := c.DeleteJob(ctx, id)
		if err != nil && ctx.Err() != nil {
			return err // interrupted: the rest are left as they are
		}
		r := rmJSON{ID: id, Deleted: err == nil}
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
			r.Error = opts.Message(exitCode(err), err)
			if !opts.JSON && len(opts.IDs) > 1 {
				fmt.Fprintf(opts.IO.errOut, "could not delete job %s: %s\n", id, r.Error)
			}
		} else if !opts.JSON {
			fmt.Fprintf(opts.IO.out, "deleted job %s\n", id)
		}
		out = append(out, r)
	}
	if opts.JSON {
		if err := printJSON(opts.IO.out, out); err != nil {
			return err
		}
	}
	if failed == 0 {
		return nil
	}
	if len(opts.IDs) == 1 {
		return &exitError{code: exitCode(first), err: first, printed: opts.JSON}
	}
	return &exitError{code: exitCode(first), err: fmt.Errorf("%d of %d jobs could not be deleted", failed, len(opts.IDs)), printed: opts.JSON}
}
