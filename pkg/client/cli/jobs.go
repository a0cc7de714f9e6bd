package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
)

// DefaultWaitTimeout bounds waiting for a job unless --timeout says otherwise.
const DefaultWaitTimeout = 10 * time.Minute

// bytesBar returns a progress callback drawing a bytes bar on a terminal, or nil.
func (a *app) bytesBar(desc string) (func(done, total int64), func()) {
	if !a.d.StderrIsTTY || a.json {
		return nil, func() {}
	}
	var bar *progressbar.ProgressBar
	update := func(done, total int64) {
		if bar == nil {
			bar = progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(a.d.Stderr),
				progressbar.OptionSetDescription(desc),
				progressbar.OptionShowBytes(true),
				progressbar.OptionShowTotalBytes(true),
				progressbar.OptionShowCount(),
				progressbar.OptionSetWidth(20),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
			)
		}
		_ = bar.Set64(done)
	}
	finish := func() {
		if bar != nil {
			_ = bar.Finish()
		}
	}
	return update, finish
}

// uploadFile uploads path and returns the queued job.
func (a *app) uploadFile(ctx context.Context, c *client.Client, path string, parallel int) (*client.Job, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, usageError("%s is not a regular file", path)
	}
	a.say("uploading %s (%s)", filepath.Base(path), humanBytes(fi.Size()))
	progress, finish := a.bytesBar("uploading")
	job, err := c.Upload(ctx, path, client.UploadOptions{
		Parallel: parallel,
		Progress: progress,
		State:    client.NewFileState(filepath.Join(a.configDir, "uploads.json")),
	})
	finish()
	if err != nil {
		return nil, err
	}
	a.say("uploaded %s: job %s", filepath.Base(path), job.ID)
	return job, nil
}

// waitJob waits for job id for at most timeout (0: no limit). A failed job is an error with
// exit code 5, running out of time one with exit code 6.
func (a *app) waitJob(ctx context.Context, c *client.Client, id string, timeout time.Duration) (*client.Job, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	a.say("waiting for job %s", id)
	var bar *progressbar.ProgressBar
	if a.d.StderrIsTTY && !a.json {
		bar = progressbar.NewOptions(100,
			progressbar.OptionSetWriter(a.d.Stderr),
			progressbar.OptionSetDescription("converting"),
			progressbar.OptionSetWidth(20),
			progressbar.OptionClearOnFinish(),
		)
	}
	j, err := c.Wait(ctx, id, func(j *client.Job) {
		if bar != nil {
			bar.Describe(j.State)
			_ = bar.Set(j.Progress)
		}
	})
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			state := "unknown state"
			if j != nil {
				state = fmt.Sprintf("%s, %d%%", j.State, j.Progress)
			}
			return j, &exitError{code: ExitTimeout, err: fmt.Errorf("timed out after %s waiting for job %s (%s)", timeout, id, state), job: j}
		}
		return j, err
	}
	if j.State == client.JobFailed {
		return j, jobFailed(j)
	}
	a.say("job %s done", id)
	return j, nil
}

func jobFailed(j *client.Job) error {
	reason := j.Error
	if reason == "" {
		reason = "no reason given"
	}
	return &exitError{code: ExitJobFailed, err: fmt.Errorf("job %s failed: %s", j.ID, reason), job: j}
}

// mp3Name is the default output name for a job's MP3: its file name with .mp3.
func mp3Name(filename, fallback string) string {
	base := filepath.Base(strings.ReplaceAll(filename, `\`, "/"))
	base = strings.TrimSuffix(base, filepath.Ext(base))
	if base == "" || base == "." || base == "/" || base == ".." {
		base = fallback
	}
	return base + ".mp3"
}

// downloadTo saves file fid to out.
func (a *app) downloadTo(ctx context.Context, c *client.Client, fid, out string) (int64, error) {
	a.say("downloading to %s", out)
	progress, finish := a.bytesBar("downloading")
	err := c.Download(ctx, fid, out, progress)
	finish()
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(out)
	if err != nil {
		return 0, err
	}
	a.say("saved %s (%s)", out, humanBytes(fi.Size()))
	return fi.Size(), nil
}

func (a *app) uploadCmd() *cobra.Command {
	var (
		wait     bool
		out      string
		parallel int
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "upload FILE",
		Short: "Upload a video and queue its conversion; print the job id",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if parallel < 1 || parallel > 64 {
				return usageError("--parallel must be between 1 and 64")
			}
			c, err := a.client(true)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			job, err := a.uploadFile(ctx, c, args[0], parallel)
			if err != nil {
				return err
			}
			if !a.json {
				fmt.Fprintln(a.d.Stdout, job.ID)
			}
			if wait || out != "" {
				if job, err = a.waitJob(ctx, c, job.ID, timeout); err != nil {
					return err
				}
			}
			if out != "" {
				if _, err := a.downloadTo(ctx, c, job.MP3FID, out); err != nil {
					return err
				}
			}
			if a.json {
				return a.printJSON(job)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the conversion is done")
	cmd.Flags().StringVarP(&out, "output", "o", "", "also download the MP3 to this file (implies --wait)")
	cmd.Flags().IntVar(&parallel, "parallel", client.DefaultParallel, "parts sent at once")
	cmd.Flags().DurationVar(&timeout, "timeout", DefaultWaitTimeout, "how long to wait for the conversion (0: no limit)")
	return cmd
}

func (a *app) jobsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "jobs",
		Short: "List your jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(true)
			if err != nil {
				return err
			}
			jobs, err := c.Jobs(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"jobs": jobs})
			}
			tw := tabwriter.NewWriter(a.d.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tPROGRESS\tFILE\tCREATED")
			for _, j := range jobs {
				fmt.Fprintf(tw, "%s\t%s\t%d%%\t%s\t%s\n", j.ID, j.State, j.Progress, j.Filename, j.CreatedAt.Local().Format("2006-01-02 15:04"))
			}
			return tw.Flush()
		},
	}
}

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status JOB",
		Short: "Show a job",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(true)
			if err != nil {
				return err
			}
			j, err := c.Job(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(j)
			}
			tw := tabwriter.NewWriter(a.d.Stdout, 0, 4, 1, ' ', 0)
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
			fmt.Fprintf(tw, "Created:\t%s\n", j.CreatedAt.Local().Format(time.DateTime))
			if j.FinishedAt != nil {
				fmt.Fprintf(tw, "Finished:\t%s\n", j.FinishedAt.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
}

func (a *app) waitCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait JOB",
		Short: "Wait until a job is done or failed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(true)
			if err != nil {
				return err
			}
			j, err := a.waitJob(cmd.Context(), c, args[0], timeout)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(j)
			}
			fmt.Fprintf(a.d.Stdout, "%s %s %s\n", j.ID, j.State, j.MP3FID)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", DefaultWaitTimeout, "give up after this long (0: no limit)")
	return cmd
}

func (a *app) downloadCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "download FID|JOB",
		Short: "Download an MP3 by file id, or the MP3 of a finished job",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(true)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			id, fid, name := args[0], args[0], mp3Name(args[0], "download")
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
			if out == "" {
				out = name
			}
			size, err := a.downloadTo(ctx, c, fid, out)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"fid": fid, "path": out, "size": size})
			}
			fmt.Fprintln(a.d.Stdout, out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "output file (default: the job's file name with .mp3, or FID.mp3)")
	return cmd
}

func (a *app) convertCmd() *cobra.Command {
	var (
		out      string
		parallel int
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "convert FILE",
		Short: "Upload a video, wait for the conversion and download the MP3",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if parallel < 1 || parallel > 64 {
				return usageError("--parallel must be between 1 and 64")
			}
			in := args[0]
			if out == "" {
				out = mp3Name(in, "output")
			}
			if same, err := samePath(in, out); err != nil {
				return err
			} else if same {
				return usageError("the output %s would overwrite the input; choose another with -o", out)
			}
			c, err := a.client(true)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			job, err := a.uploadFile(ctx, c, in, parallel)
			if err != nil {
				return err
			}
			if job, err = a.waitJob(ctx, c, job.ID, timeout); err != nil {
				return err
			}
			if _, err := a.downloadTo(ctx, c, job.MP3FID, out); err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"job": job, "path": out})
			}
			fmt.Fprintln(a.d.Stdout, out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "output file (default: the input's name with .mp3)")
	cmd.Flags().IntVar(&parallel, "parallel", client.DefaultParallel, "parts sent at once")
	cmd.Flags().DurationVar(&timeout, "timeout", DefaultWaitTimeout, "how long to wait for the conversion (0: no limit)")
	return cmd
}

func samePath(a, b string) (bool, error) {
	aa, err := filepath.Abs(a)
	if err != nil {
		return false, err
	}
	bb, err := filepath.Abs(b)
	if err != nil {
		return false, err
	}
	return aa == bb, nil
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
