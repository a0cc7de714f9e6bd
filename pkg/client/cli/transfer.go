package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
	"github.com/v2m/v2m/pkg/wire"
)

// What upload, wait, download and convert share: uploading a file, waiting for a job and
// downloading an MP3, each telling the user how it goes.

// DefaultWaitTimeout bounds waiting for a job unless --timeout says otherwise.
const DefaultWaitTimeout = 10 * time.Minute

// maxParallel bounds --parallel.
const maxParallel = 64

func checkParallel(n int) error {
	if n < 1 || n > maxParallel {
		return usageError("--parallel must be between 1 and %d", maxParallel)
	}
	return nil
}

// progress tells the user on stderr what a command does: step lines unless --json, and
// progress bars only on a terminal and without --json.
type progress struct {
	w     io.Writer
	quiet bool
	bars  bool
	// line, when not nil, is the file's own line among the bars of several files: bytesBar
	// draws there, whatever bars says.
	line *fileLine
}

func newProgress(s *iostreams, json bool) progress {
	return progress{w: s.errOut, quiet: json, bars: s.stderrTTY && !json}
}

// say prints a step line.
func (p progress) say(format string, args ...any) {
	if !p.quiet {
		fmt.Fprintf(p.w, format+"\n", args...)
	}
}

// sendSettings are how upload and convert send a file: their --parallel and --full, and the
// job's MP3 options (nil for the defaults).
type sendSettings struct {
	Parallel int
	Full     bool
	Options  *client.JobOptions
	// Resume is the command line that resumes the upload of files (the command as it was
	// run, for those files only); nil in tests that parse only.
	Resume func(files ...string) string
	// State remembers the uploads; nil for <configDir>/uploads.json. Uploads that run at
	// once must share one.
	State client.StateStore
}

func addSendFlags(cmd *cobra.Command, s *sendSettings) {
	cmd.Flags().IntVar(&s.Parallel, "parallel", client.DefaultParallel, "parts sent at once")
	cmd.Flags().BoolVar(&s.Full, "full", false, "send the whole video (by default only its audio, tags, chapters, pictures and one frame for the cover)")
}

// uploadFile uploads path for a job as s says, remembering the upload in
// <configDir>/uploads.json so that a rerun (with the same options) resumes it, and returns the
// queued job. An upload cut off once it began is a *stoppedError saying how far it got and
// which command resumes it.
func uploadFile(ctx context.Context, p progress, c *client.Client, path, configDir string, s sendSettings) (*client.Job, error) {
	if err := checkInput(path); err != nil {
		return nil, err
	}
	state := s.State
	if state == nil {
		state = client.NewFileState(filepath.Join(configDir, "uploads.json"))
	}
	update, finish := p.bytesBar("uploading")
	var sent sentCounter
	job, err := c.Upload(ctx, path, client.UploadOptions{
		Parallel: s.Parallel,
		Full:     s.Full,
		Progress: func(done, total int64) {
			sent.set(done, total)
			if update != nil {
				update(done, total)
			}
		},
		State:   state,
		Options: s.Options,
		Prepared: func(send, size int64) {
			if send < size {
				p.say("uploading %s: its audio, %s of %s", filepath.Base(path), humanBytes(send), humanBytes(size))
			} else {
				p.say("uploading %s (%s)", filepath.Base(path), humanBytes(size))
			}
		},
	})
	finish()
	if err != nil {
		if done, total, began := sent.get(); began && resumable(err) && s.Resume != nil {
			return nil, &stoppedError{err: err, hint: fmt.Sprintf("%s of %s of %s are on the server: run `%s` to resume the upload",
				humanBytes(done), humanBytes(total), filepath.Base(path), s.Resume(path))}
		}
		return nil, err
	}
	p.say("uploaded %s: job %s", filepath.Base(path), job.ID)
	return job, nil
}

// checkInput checks that path is a file that can be uploaded: a missing file or a directory
// is a usage error.
func checkInput(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return usageError("%s: no such file", path)
	}
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return usageError("%s is not a regular file", path)
	}
	return nil
}

// waitJob waits for job id for at most timeout (0: no limit), following its events: on a
// terminal a bar shows the conversion, otherwise a line tells each change of state. A failed
// job is an error with exit code 5, running out of time one with exit code 6, an interrupt
// one with exit code 130 that says how to wait again.
func waitJob(ctx context.Context, p progress, c *client.Client, id string, timeout time.Duration) (*client.Job, error) {
	parent := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	p.say("waiting for job %s", id)
	view := p.jobView(id)
	j, err := c.Watch(ctx, id, view.show)
	view.finish()
	if err != nil {
		switch {
		case parent.Err() != nil:
			return j, &exitError{code: ExitInterrupted, job: j,
				err: fmt.Errorf("interrupted; job %s goes on on the server: run 'v2m wait %s' to wait for it again", id, id)}
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
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
	p.say("job %s done", id)
	return j, nil
}

// jobView shows a job's changes as waitJob follows them.
type jobView struct {
	p     progress
	id    string
	bar   *progressbar.ProgressBar
	state string // the last state told
}

func (p progress) jobView(id string) *jobView {
	v := &jobView{p: p, id: id}
	if p.bars {
		v.bar = progressbar.NewOptions(100,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription("waiting"),
			progressbar.OptionSetWidth(20),
			progressbar.OptionClearOnFinish(),
		)
	}
	return v
}

// show draws j on the bar, or says its state when it changed (a final state is the caller's
// to tell).
func (v *jobView) show(j *client.Job) {
	if v.bar != nil {
		v.bar.Describe(j.State)
		_ = v.bar.Set(j.Progress)
		return
	}
	if j.State != v.state && !j.Final() {
		v.p.say("job %s %s", v.id, j.State)
	}
	v.state = j.State
}

func (v *jobView) finish() {
	if v.bar != nil {
		_ = v.bar.Finish()
	}
}

func jobFailed(j *client.Job) error {
	reason := j.Error
	if reason == "" {
		reason = "no reason given"
	}
	return &exitError{code: ExitJobFailed, err: fmt.Errorf("job %s failed: %s", j.ID, reason), job: j}
}

// mp3Name is the default output name for a job's MP3: wire.MP3Name, the server's own rule,
// with fallback as the name when filename has none.
func mp3Name(filename, fallback string) string {
	base := filename
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	if base == "" || base == "." || base == ".." {
		return fallback + ".mp3"
	}
	return wire.MP3Name(filename)
}

func samePath(a, b string) (bool, error) {
	aa, err := filepath.Abs(a)
	if err != nil {
		return false, fmt.Errorf("resolve %s: %w", a, err)
	}
	bb, err := filepath.Abs(b)
	if err != nil {
		return false, fmt.Errorf("resolve %s: %w", b, err)
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
