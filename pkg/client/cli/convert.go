package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
)

type convertOptions struct {
	IO     *iostreams
	Config func() (*config, error)
	Client func() (*client.Client, error)
	JSON   bool

	File string
	// Output is -o: by default the input's name with .mp3 in the working directory, or
	// without an extension: the directory of the MP3s of a job split by chapters.
	Output  string
	Send    sendSettings
	Timeout time.Duration // of the wait; 0: no limit
}

func newCmdConvert(f *factory, runF func(*convertOptions) error) *cobra.Command {
	opts := &convertOptions{IO: f.io, Config: f.config, Client: f.authClient}
	var mp3 *mp3Flags
	cmd := &cobra.Command{
		Use:   "convert FILE",
		Short: "Upload a video, wait for the conversion and download the MP3",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.flags.json
			opts.File = args[0]
			if err := checkParallel(opts.Send.Parallel); err != nil {
				return err
			}
			var err error
			if opts.Send.Options, err = mp3.options(cmd.Flags()); err != nil {
				return err
			}
			if opts.Output == "" {
				opts.Output = mp3Name(opts.File, "output")
				if opts.Send.Options != nil && opts.Send.Options.SplitChapters {
					opts.Output = strings.TrimSuffix(opts.Output, ".mp3") // a directory
				}
			}
			if same, err := samePath(opts.File, opts.Output); err != nil {
				return err
			} else if same {
				return usageError("the output %s would overwrite the input; choose another with -o", opts.Output)
			}
			if runF != nil {
				return runF(opts)
			}
			return convertRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "output file, or directory with --split-chapters (default: the input's name with .mp3, or without an extension)")
	addSendFlags(cmd, &opts.Send)
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", DefaultWaitTimeout, "how long to wait for the conversion (0: no limit)")
	mp3 = addMP3Flags(cmd.Flags())
	return cmd
}

func convertRun(ctx context.Context, opts *convertOptions) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	c, err := opts.Client()
	if err != nil {
		return err
	}
	p := newProgress(opts.IO, opts.JSON)
	job, err := uploadFile(ctx, p, c, opts.File, cfg.Dir, opts.Send)
	if err != nil {
		return err
	}
	if job, err = waitJob(ctx, p, c, job.ID, opts.Timeout); err != nil {
		return err
	}
	saved, err := saveJob(ctx, p, c, job, opts.Output)
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.out, convertJSON{Job: newJobJSON(job), Path: opts.Output, Files: saved.Files})
	}
	fmt.Fprintln(opts.IO.out, opts.Output)
	return nil
}
