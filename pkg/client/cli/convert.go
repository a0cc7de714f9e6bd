package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

type convertOptions struct {
	batchOptions
}

func newCmdConvert(f *factory, runF func(*convertOptions) error) *cobra.Command {
	opts := &convertOptions{batchOptions{IO: f.io, Config: f.config, Client: f.authClient}}
	var mp3 *mp3Flags
	cmd := &cobra.Command{
		Use:   "convert FILE...",
		Short: "Upload videos, wait for their conversion and download the MP3s",
		Long: "convert uploads each FILE, waits for its conversion and downloads its MP3. Several files go --jobs at a\n" +
			"time, with a bar each on a terminal, and end in a summary: FILE, JOB, STATE and RESULT (the MP3, or the\n" +
			"error). With several files -o must be a directory.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.parse(f, cmd, args, mp3, true); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return convertRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output.Path, "output", "o", "", "output file, directory to save into, or - for stdout; the directory of the MP3s with --split-chapters "+
		"(default: the input's name with .mp3, or without an extension, in the working directory)")
	addBatchFlags(cmd, &opts.batchOptions)
	mp3 = addMP3Flags(cmd.Flags())
	return cmd
}

func convertRun(ctx context.Context, opts *convertOptions) error {
	if len(opts.Files) > 1 {
		return opts.run(ctx)
	}
	r, err := opts.single(ctx, nil)
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.out, convertJSON{Job: newJobJSON(r.Job), Path: r.Saved.Path, Files: r.Saved.Files})
	}
	if !opts.Output.stdout() {
		fmt.Fprintln(opts.IO.out, r.Saved.Path)
	}
	return nil
}
