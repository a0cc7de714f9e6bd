package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
)

type uploadOptions struct {
	batchOptions
}

func newCmdUpload(f *factory, runF func(*uploadOptions) error) *cobra.Command {
	opts := &uploadOptions{batchOptions{IO: f.io, Config: f.config, Client: f.authClient}}
	var mp3 *mp3Flags
	cmd := &cobra.Command{
		Use:   "upload FILE...",
		Short: "Upload videos and queue their conversion; print the job ids",
		Long: "upload uploads each FILE and prints its job id. Running it again after an interruption sends only the\n" +
			"parts the server lacks. Several files go --jobs at a time, with a bar each on a terminal, and end in a\n" +
			"summary: FILE, JOB, STATE and RESULT.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Output.stdout() {
				return usageError("upload prints job ids on stdout: use 'v2m convert -o -' to write the MP3 there")
			}
			if err := opts.parse(f, cmd, args, mp3, opts.Output.Path != ""); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return uploadRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait until the conversions are done")
	cmd.Flags().StringVarP(&opts.Output.Path, "output", "o", "", "also download the MP3 to this file or into this directory, or the MP3s into this directory with --split-chapters (implies --wait)")
	addBatchFlags(cmd, &opts.batchOptions)
	mp3 = addMP3Flags(cmd.Flags())
	return cmd
}

func uploadRun(ctx context.Context, opts *uploadOptions) error {
	if len(opts.Files) > 1 {
		return opts.run(ctx)
	}
	r, err := opts.single(ctx, func(j *client.Job) {
		if !opts.JSON {
			fmt.Fprintln(opts.IO.out, j.ID)
		}
	})
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.out, newJobJSON(r.Job))
	}
	return nil
}
