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
	Output output // Path "" for the job's file name with .mp3 (a directory for a split job), or ID.mp3
}

func newCmdDownload(f *factory, runF func(*downloadOptions) error) *cobra.Command {
	opts := &downloadOptions{IO: f.io, Client: f.authClient}
	cmd := &cobra.Command{
		Use:               "download FID|JOB",
		Short:             "Download an MP3 by file id, or the MP3 of a finished job",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeIDs(f, true),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.flags.json
			opts.ID = args[0]
			opts.Output.Stdout = opts.IO.out
			if err := checkStdout(opts.IO, opts.Output.Path, opts.JSON); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return downloadRun(cmd.Context(), opts)
		},
	}
	addOutputFlags(cmd, &opts.Output, "output file, directory to save it into, or - for stdout; the directory of the MP3s of a job split "+
		"by chapters (default: the job's file name with .mp3, or without an extension for a split job, or FID.mp3)")
	return cmd
}

// downloadRun downloads what job opts.ID made when there is such a job (its MP3, or the MP3s
// of a job split by chapters into a directory), else file opts.ID.
func downloadRun(ctx context.Context, opts *downloadOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	p := newProgress(opts.IO, opts.JSON)
	id := opts.ID
	var res downloadJSON
	j, err := c.Job(ctx, id)
	switch {
	case err == nil && j.State == client.JobDone:
		res, err = saveJob(ctx, p, c, j, opts.Output)
	case err == nil && j.State == client.JobFailed:
		return jobFailed(j)
	case err == nil:
		return fmt.Errorf("job %s is not done yet (%s, %d%%); run 'v2m wait %s'", id, j.State, j.Progress, id)
	case client.IsNotFound(err): // not a job: a file id
		res = downloadJSON{FID: id, Path: opts.Output.Path}
		if !opts.Output.stdout() {
			res.Path = opts.Output.file(mp3Name(id, "download"))
			if err := checkClobber(res.Path, opts.Output.Clobber); err != nil {
				return err
			}
		}
		res.Size, err = downloadTo(ctx, p, c, id, res.Path, opts.Output.Clobber, opts.Output.Stdout)
	}
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.out, res)
	}
	if !opts.Output.stdout() {
		fmt.Fprintln(opts.IO.out, res.Path)
	}
	return nil
}
