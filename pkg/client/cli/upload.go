package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
)

type uploadOptions struct {
	IO     *iostreams
	Config func() (*config, error)
	Client func() (*client.Client, error)
	JSON   bool

	File    string
	Wait    bool   // --wait, or implied by --output
	Output  string // -o: also download the MP3 here
	Send    sendSettings
	Timeout time.Duration // of the wait; 0: no limit
}

func newCmdUpload(f *factory, runF func(*uploadOptions) error) *cobra.Command {
	opts := &uploadOptions{IO: f.io, Config: f.config, Client: f.authClient}
	var mp3 *mp3Flags
	cmd := &cobra.Command{
		Use:   "upload FILE",
		Short: "Upload a video and queue its conversion; print the job id",
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
			opts.Wait = opts.Wait || opts.Output != ""
			if runF != nil {
				return runF(opts)
			}
			return uploadRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait until the conversion is done")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "also download the MP3 to this file, or the MP3s into this directory with --split-chapters (implies --wait)")
	addSendFlags(cmd, &opts.Send)
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", DefaultWaitTimeout, "how long to wait for the conversion (0: no limit)")
	mp3 = addMP3Flags(cmd.Flags())
	return cmd
}

func uploadRun(ctx context.Context, opts *uploadOptions) error {
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
	if !opts.JSON {
		fmt.Fprintln(opts.IO.out, job.ID)
	}
	if opts.Wait {
		if job, err = waitJob(ctx, p, c, job.ID, opts.Timeout); err != nil {
			return err
		}
	}
	if opts.Output != "" {
		if _, err := saveJob(ctx, p, c, job, opts.Output); err != nil {
			return err
		}
	}
	if opts.JSON {
		return printJSON(opts.IO.out, newJobJSON(job))
	}
	return nil
}
