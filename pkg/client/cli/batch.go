package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/v2m/v2m/pkg/client"
)

// What upload and convert share: each of their files is uploaded, then, when asked, its job is
// waited for and what it made saved; several files go a few at a time, with one bar each on a
// terminal, and end in a summary.

// DefaultJobs is how many files upload and convert send at once unless --jobs says otherwise.
const DefaultJobs = 2

// maxJobs bounds --jobs.
const maxJobs = 16

// batchOptions are the options upload and convert share.
type batchOptions struct {
	IO     *iostreams
	Config func() (*config, error)
	Client func() (*client.Client, error)
	JSON   bool
	// Describe is the message the user reads for err.
	Describe func(err error) string

	Files []string
	// Targets are where each file's MP3 is saved (the directory of its MP3s for a job split
	// by chapters, "-" for stdout); nil when nothing is downloaded.
	Targets []string
	Wait    bool   // wait for the jobs (implied by Targets)
	Output  output // -o and --clobber, as given
	Send    sendSettings
	Timeout time.Duration // of each wait; 0: no limit
	Jobs    int           // files sent at once
}

func addBatchFlags(cmd *cobra.Command, o *batchOptions) {
	addSendFlags(cmd, &o.Send)
	cmd.Flags().IntVar(&o.Jobs, "jobs", DefaultJobs, "send `N` files at once")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", DefaultWaitTimeout, "how long to wait for each conversion (0: no limit)")
	cmd.Flags().BoolVar(&o.Output.Clobber, "clobber", false, "overwrite files that exist")
}

// parse fills in what the command line gives, in RunE: the files, the MP3 options, the
// command that resumes an upload, and, when download says that something is saved, the
// targets (split: whether a job is split by chapters). Every check that can be made before
// anything is sent is made here.
func (o *batchOptions) parse(f *factory, cmd *cobra.Command, args []string, mp3 *mp3Flags, download bool) error {
	o.JSON = f.flags.json
	o.Files = args
	o.Describe = func(err error) string { return f.message(exitCode(err), err) }
	o.Output.Stdout = o.IO.out
	o.Send.Resume = func(files ...string) string { return resumeCommand(cmd, files) }
	if err := checkParallel(o.Send.Parallel); err != nil {
		return err
	}
	if o.Jobs < 1 || o.Jobs > maxJobs {
		return usageError("--jobs must be between 1 and %d", maxJobs)
	}
	var err error
	if o.Send.Options, err = mp3.options(cmd.Flags()); err != nil {
		return err
	}
	if !download {
		return nil
	}
	o.Wait = true
	if err := checkStdout(o.IO, o.Output.Path, o.JSON); err != nil {
		return err
	}
	o.Targets, err = targets(o.Files, o.Output, o.Send.Options != nil && o.Send.Options.SplitChapters)
	return err
}

// targets returns where each file's MP3 goes as out says (split: the directory of its MP3s):
// by default its name with .mp3 (without an extension, split) in the working directory; with
// several files -o must be a directory. An output that is an input, that exists (without
// --clobber) or that two inputs share is a usage error.
func targets(files []string, out output, split bool) ([]string, error) {
	many := len(files) > 1
	if many && out.Path != "" && (out.stdout() || !isDir(out.Path)) {
		return nil, usageError("with several files, -o must be a directory (end it with %c)", filepath.Separator)
	}
	ts := make([]string, len(files))
	seen := map[string]string{}
	for i, file := range files {
		name := mp3Name(file, "output")
		if split {
			name = strings.TrimSuffix(name, ".mp3")
		}
		switch {
		case out.stdout():
			ts[i] = "-"
			continue
		case out.Path == "":
			ts[i] = name
		case split && !many:
			ts[i] = out.Path
		case split:
			ts[i] = filepath.Join(out.Path, name)
		default:
			ts[i] = out.file(name)
		}
		if same, err := samePath(file, ts[i]); err != nil {
			return nil, err
		} else if same {
			return nil, usageError("the output %s would overwrite the input; choose another with -o", ts[i])
		}
		if !split {
			if err := checkClobber(ts[i], out.Clobber); err != nil {
				return nil, err
			}
		}
		abs, err := filepath.Abs(ts[i])
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", ts[i], err)
		}
		if other, dup := seen[abs]; dup {
			return nil, usageError("%s and %s would both be saved as %s", other, file, ts[i])
		}
		seen[abs] = file
	}
	return ts, nil
}

// fileResult is what became of one file.
type fileResult struct {
	File  string
	Job   *client.Job   // nil when no job was made
	Saved *downloadJSON // nil when nothing was saved
	Err   error
}

// process uploads file i, then waits for its job and saves what it made as o says. uploaded,
// when not nil, is called with the queued job. wp is the progress the wait reports to.
func (o *batchOptions) process(ctx context.Context, p, wp progress, c *client.Client, configDir string, i int, uploaded func(*client.Job)) fileResult {
	r := fileResult{File: o.Files[i]}
	r.Job, r.Err = uploadFile(ctx, p, c, r.File, configDir, o.Send)
	if r.Err != nil {
		return r
	}
	if uploaded != nil {
		uploaded(r.Job)
	}
	if !o.Wait && o.Targets == nil {
		return r
	}
	if p.line != nil {
		p.line.set("converting")
	}
	j, err := waitJob(ctx, wp, c, r.Job.ID, o.Timeout)
	if j != nil {
		r.Job = j
	}
	if r.Err = err; err != nil || o.Targets == nil {
		return r
	}
	saved, err := saveJob(ctx, p, c, r.Job, output{Path: o.Targets[i], Clobber: o.Output.Clobber, Stdout: o.Output.Stdout})
	if r.Err = err; err == nil {
		r.Saved = &saved
	}
	return r
}

// connect checks the files, then returns the configuration and the client.
func (o *batchOptions) connect() (*config, *client.Client, error) {
	for _, file := range o.Files {
		if err := checkInput(file); err != nil {
			return nil, nil, err
		}
	}
	cfg, err := o.Config()
	if err != nil {
		return nil, nil, err
	}
	c, err := o.Client()
	if err != nil {
		return nil, nil, err
	}
	// One state for all the uploads of the run: it serialises their changes to the file.
	o.Send.State = client.NewFileState(filepath.Join(cfg.Dir, "uploads.json"))
	return cfg, c, nil
}

// single processes the one file of the command line, telling the user how it goes with step
// lines and bars, and returns its result, or its error.
func (o *batchOptions) single(ctx context.Context, uploaded func(*client.Job)) (fileResult, error) {
	cfg, c, err := o.connect()
	if err != nil {
		return fileResult{}, err
	}
	p := newProgress(o.IO, o.JSON)
	r := o.process(ctx, p, p, c, cfg.Dir, 0, uploaded)
	if ee := (*exitError)(nil); r.Err != nil && ctx.Err() != nil && r.Job != nil && !r.Job.Final() &&
		!(errors.As(r.Err, &ee) && ee.code == ExitInterrupted) { // else the wait said what comes next
		return r, &stoppedError{err: r.Err, hint: fmt.Sprintf("job %s goes on on the server: run 'v2m download %s' once it is done", r.Job.ID, r.Job.ID)}
	}
	return r, r.Err
}

// run processes every file, o.Jobs at a time, then prints the summary (or, with --json, the
// results) and returns an error naming the files that failed.
func (o *batchOptions) run(ctx context.Context) error {
	cfg, c, err := o.connect()
	if err != nil {
		return err
	}
	w := &lockedWriter{w: o.IO.errOut}
	bars := o.IO.stderrTTY && !o.JSON
	lines := make([]*fileLine, len(o.Files))
	var pr *mpb.Progress
	if bars {
		pr = newBars(w, o.IO.errOut)
		width := 0
		for _, f := range o.Files {
			width = max(width, len(filepath.Base(f)))
		}
		for i, f := range o.Files {
			lines[i] = newFileLine(pr, filepath.Base(f), width)
		}
	}
	results := make([]fileResult, len(o.Files))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(o.Jobs, len(o.Files)) {
		wg.Go(func() {
			for i := range next {
				// With bars, each file's line says how it goes, and nothing else is written.
				p := progress{w: w, quiet: o.JSON || bars, line: lines[i]}
				results[i] = o.process(ctx, p, progress{w: w, quiet: p.quiet}, c, cfg.Dir, i, nil)
				if lines[i] != nil {
					lines[i].done()
				}
			}
		})
	}
feed:
	for i := range o.Files {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	for i := range results {
		if results[i].File == "" { // never started
			results[i] = fileResult{File: o.Files[i], Err: context.Cause(ctx)}
			if lines[i] != nil {
				lines[i].done()
			}
		}
	}
	if pr != nil {
		pr.Wait()
	}
	if o.JSON {
		if err := printJSON(o.IO.out, o.resultsJSON(results)); err != nil {
			return err
		}
	} else if err := o.summary(results); err != nil {
		return err
	}
	return o.failure(results)
}

// summary prints a table of the results on stdout: FILE, JOB, STATE and RESULT (where the
// MP3 went, or the error). Off a terminal it is tab-separated without a header, as jobs is.
func (o *batchOptions) summary(results []fileResult) error {
	tty := o.IO.stdoutTTY
	var out io.Writer = o.IO.out
	var tw *tabwriter.Writer
	if tty {
		tw = tabwriter.NewWriter(o.IO.out, 0, 4, 2, ' ', 0)
		out = tw
		fmt.Fprintln(tw, "FILE\tJOB\tSTATE\tRESULT")
	}
	for _, r := range results {
		job, state, result := "-", "error", ""
		if r.Job != nil {
			job, state = r.Job.ID, r.Job.State
		}
		switch {
		case r.Err != nil:
			result = o.reason(r.Err)
		case r.Saved != nil:
			result = r.Saved.Path
		}
		if !tty && job == "-" {
			job = ""
		}
		fmt.Fprintf(out, "%s\t%s\t%s\t%s\n", tsvField(r.File), job, state, tsvField(result))
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// reason is what the summary says of a file that failed with err: "interrupted" for Ctrl-C,
// and never the hint of a *stoppedError, which the summary gives once for all files.
func (o *batchOptions) reason(err error) string {
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	if se := (*stoppedError)(nil); errors.As(err, &se) {
		err = se.err
	}
	return o.Describe(err)
}

func (o *batchOptions) resultsJSON(results []fileResult) resultsJSON {
	out := resultsJSON{Results: make([]resultJSON, 0, len(results))}
	for _, r := range results {
		res := resultJSON{File: r.File, Job: newJobJSON(r.Job)}
		if r.Saved != nil {
			res.Path, res.Files = r.Saved.Path, r.Saved.Files
		}
		if r.Err != nil {
			code := exitCode(r.Err)
			res.Error = &errorBody{Code: errorCode(code, r.Err), Exit: code, Message: o.reason(r.Err)}
		}
		out.Results = append(out.Results, res)
	}
	return out
}

// failure is the error of a batch in which some files failed, nil when none did: its exit
// code is 5 when a job failed, else the first failure's; it names the files, and says which
// command takes up the uploads that were cut off.
func (o *batchOptions) failure(results []fileResult) error {
	var failed, resume, pending []string
	code := 0
	for _, r := range results {
		if r.Err == nil {
			continue
		}
		failed = append(failed, filepath.Base(r.File))
		switch c := exitCode(r.Err); {
		case code == 0, c == ExitJobFailed:
			code = c
		}
		switch {
		case r.Job == nil && resumable(r.Err):
			resume = append(resume, r.File)
		case r.Job != nil && !r.Job.Final():
			pending = append(pending, r.Job.ID)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	err := error(&exitError{code: code, printed: o.JSON,
		err: fmt.Errorf("%d of %d files failed: %s", len(failed), len(results), strings.Join(failed, ", "))})
	var hints []string
	if len(resume) > 0 && o.Send.Resume != nil {
		hints = append(hints, fmt.Sprintf("run `%s` to resume the uploads", o.Send.Resume(resume...)))
	}
	if len(pending) > 0 {
		hints = append(hints, fmt.Sprintf("the server goes on with job %s: run 'v2m download JOB' once it is done", strings.Join(pending, ", ")))
	}
	if len(hints) > 0 {
		err = &stoppedError{err: err, hint: strings.Join(hints, "; ")}
	}
	return err
}

// fileLine is one file's line among the bars of several files: its name, what is being done
// with it, and the bar and bytes of its current transfer.
type fileLine struct {
	bar   *mpb.Bar
	mu    sync.Mutex
	phase string
	m     *meter // nil between transfers
}

func newFileLine(pr *mpb.Progress, name string, width int) *fileLine {
	l := &fileLine{phase: "queued"}
	l.bar = pr.AddBar(0, mpb.BarRemoveOnComplete(), mpb.BarWidth(barWidth),
		mpb.PrependDecorators(
			decor.Name(name, decor.WC{W: width + 1, C: decor.DindentRight}),
			decor.Any(func(decor.Statistics) string {
				l.mu.Lock()
				defer l.mu.Unlock()
				return l.phase
			}, decor.WC{W: 12, C: decor.DindentRight})),
		mpb.AppendDecorators(decor.Any(func(s decor.Statistics) string {
			l.mu.Lock()
			m := l.m
			l.mu.Unlock()
			if m == nil {
				return ""
			}
			return " " + m.text(s.Current, s.Total)
		})))
	return l
}

// set shows phase, with an empty bar.
func (l *fileLine) set(phase string) {
	l.mu.Lock()
	l.phase, l.m = phase, nil
	l.mu.Unlock()
	l.bar.SetTotal(0, false)
	l.bar.SetCurrent(0)
}

// transfer returns the progress callback of a transfer shown as phase.
func (l *fileLine) transfer(phase string) func(done, total int64) {
	var once sync.Once
	return func(done, total int64) {
		once.Do(func() {
			l.mu.Lock()
			l.phase, l.m = phase, newMeter(done)
			l.mu.Unlock()
		})
		if total > 0 {
			l.bar.SetTotal(total, false)
		}
		l.bar.SetCurrent(done)
	}
}

// done ends the line, which is cleared: the summary follows.
func (l *fileLine) done() { l.bar.SetTotal(-1, true) }

// lockedWriter serialises the writes of the goroutines that share it.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
