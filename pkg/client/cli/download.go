package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
)

type downloadOptions struct {
	IO     *iostreams
	Client func() (*client.Client, error)
	JSON   bool

	ID     string // a job id or a file id
	Output string // "" for the job's file name with .mp3, or ID.mp3
}

func newCmdDownload(f *factory, runF func(*downloadOptions) error) *cobra.Command {
	opts := &downloadOptions{IO: f.io, Client: f.authClient}
	cmd := &cobra.Command{
		Use:   "download FID|JOB",
		Short: "Download an MP3 by file id, or the MP3 of a finished job",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.flags.json
			opts.ID = args[0]
			if runF != nil {
				return runF(opts)
			}
			return downloadRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "output file (default: the job's file name with .mp3, or FID.mp3)")
	return cmd
}

// downloadRun downloads the MP3 of job opts.ID when there is such a job, else file opts.ID.
func downloadRun(ctx context.Context, opts *downloadOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	id, fid, name := opts.ID, opts.ID, mp3Name(opts.ID, "download")
	j, err := c.Job(ctx, id)
	switch {
	case err == nil && j.State == client.JobDone:
		fid, name = j.MP3FID, mp3Name(j.Filename, j.MP3FID)
	case err == nil && j.State == client.JobFailed:
		return jobFailed(j)
	case err == nil:
		return fmt.Errorf("job %s is not done yet (%s, %d%%); run 'v2m wait %s'", id, j.State, j.Progress, id)
	case client.IsNotFound(err): // not a job: a file id
	default:
		return err
	}
	out := opts.Output
	if out == "" {
		out = name
	}
	size, err := downloadTo(ctx, newProgress(opts.IO, opts.JSON), c, fid, out)
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.out, downloadJSON{FID: fid, Path: out, Size: size})
	}
	fmt.Fprintln(opts.IO.out, out)
	return nil
}
