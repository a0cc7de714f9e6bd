// Package ffmpeg implements server.Converter with the ffmpeg and ffprobe programs.
//
// A conversion probes the input with ffprobe and reads the chosen audio track's packets
// (without decoding them) to learn how much audio it really holds, extracts that track, as
// the job's options say, into an MP3 with ffmpeg's libmp3lame encoder, reporting progress
// as it goes, and probes the MP3 afterwards to check that it holds all of that audio. Input that cannot be
// converted (not media, empty, no audio, truncated or corrupt) gives an error marked
// server.Permanent; trouble unrelated to the input (a missing binary, an unwritable
// destination, a canceled context) gives a plain error, so that the job is retried.
package ffmpeg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/sandbox"
	"github.com/v2m/v2m/pkg/server/tracing"
)

// installHint is how to get both programs on the Debian family.
const installHint = "install it with `sudo apt-get install ffmpeg`"

// Config configures a Converter.
type Config struct {
	// FFmpeg and FFprobe are the programs' paths; "" looks up "ffmpeg" and "ffprobe" in PATH.
	FFmpeg, FFprobe string
	// Bitrate selects the MP3 encoding of a job that asks for neither a quality nor a
	// bitrate: "" is variable bitrate at server.DefaultQuality (quality 2, about 170-210
	// kbit/s); otherwise a constant bitrate such as "192k", from 8k to 320k.
	Bitrate string
	// Timeout limits one conversion; 0 means no limit. A conversion that takes longer
	// fails permanently.
	Timeout time.Duration
	// Logger receives debug records of the commands run; nil discards them.
	Logger *slog.Logger
	// EncodeThreads bounds the MP3 encoders of one conversion: audio of ParallelMin or more
	// is decoded once and encoded in segments on that many CPUs at once (parallel.go).
	// 0 means as many as the process has CPUs (runtime.GOMAXPROCS), less those that other
	// conversions hold; 1 encodes every file serially. It must not be negative.
	EncodeThreads int
	// ParallelMin is the least audio that is encoded in segments; 0 means 2 minutes.
	ParallelMin time.Duration
	// Sandbox, when set, runs ffmpeg and ffprobe confined by Landlock to the system's
	// libraries, their one input file and their work directory. Nil runs them unconfined
	// (the demuxer allow-list, the work directory and the empty environment still apply).
	Sandbox *sandbox.Launcher
	// TracerProvider, when set, records spans of ffprobe runs and of the encode (and the
	// loudness measure) within the caller's span.
	TracerProvider trace.TracerProvider
}

// Formats are the demuxers that ffmpeg and ffprobe may use, passed as -format_whitelist:
// media containers that hold their own data. Playlist and reference formats (hls, dash,
// concat, image2, ffmetadata, webm_dash_manifest, ...), which open further files or URLs
// named inside an upload, and devices are not among them. ffmpeg matches any name of a
// demuxer's list, so "mov" admits "mov,mp4,m4a,3gp,3g2,mj2" and "matroska" admits WebM.
var Formats = []string{
	"mov", "matroska", "avi", "flv", "mpeg", "mpegts", "ogg", "asf", "nut", "rm", "dv", "mxf", "wtv",
	"mp3", "aac", "loas", "ac3", "eac3", "dts", "dtshd", "truehd", "mlp", "flac", "wav", "w64", "aiff",
	"caf", "amr", "au", "wv", "ape", "tta", "tak", "mpc", "mpc8",
}

// Converter converts videos to MP3 with ffmpeg. It is safe for concurrent use.
type Converter struct {
	ffmpeg, ffprobe string
	bitrate         string
	timeout         time.Duration
	log             *slog.Logger
	tracer          trace.Tracer
	sandbox         *sandbox.Launcher
	formats         string // -format_whitelist; tests of the Landlock layer alone clear it
	encodeThreads   int
	parallelMin     time.Duration
	segFrames       int // frames per segment of a parallel encode; tests lower it
	cpus            *cpuPool
	// joined and fallbacks count the MP3s encoded in segments, and those encoded serially
	// after the parallel encode failed.
	joined, fallbacks atomic.Int64
}

var _ server.Converter = (*Converter)(nil)

// New returns a Converter after resolving the programs' paths. It does not run them;
// Check does.
func New(cfg Config) (*Converter, error) {
	ff, err := lookup(cfg.FFmpeg, "ffmpeg")
	if err != nil {
		return nil, err
	}
	fp, err := lookup(cfg.FFprobe, "ffprobe")
	if err != nil {
		return nil, err
	}
	if cfg.Bitrate != "" {
		if err := validBitrate(cfg.Bitrate); err != nil {
			return nil, err
		}
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("ffmpeg timeout %v: must not be negative", cfg.Timeout)
	}
	if cfg.EncodeThreads < 0 || cfg.ParallelMin < 0 {
		return nil, fmt.Errorf("ffmpeg encode threads %d, parallel minimum %v: must not be negative", cfg.EncodeThreads, cfg.ParallelMin)
	}
	pmin := cfg.ParallelMin
	if pmin == 0 {
		pmin = defaultParallelMin
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Converter{ffmpeg: ff, ffprobe: fp, bitrate: cfg.Bitrate, timeout: cfg.Timeout, log: log, tracer: tracing.Tracer(cfg.TracerProvider),
		sandbox: cfg.Sandbox, formats: strings.Join(Formats, ","),
		encodeThreads: cfg.EncodeThreads, parallelMin: pmin, segFrames: defaultSegFrames, cpus: &cpuPool{}}, nil
}

// lookup resolves a program given by path, or by name in PATH when path is "".
func lookup(path, name string) (string, error) {
	if path == "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("%s not found in PATH: %s", name, installHint)
		}
		return p, nil
	}
	p, err := exec.LookPath(path)
	if err != nil {
		return "", fmt.Errorf("%s not found at %s (%v): %s", name, path, unwrapExec(err), installHint)
	}
	return p, nil
}

// unwrapExec drops exec.Error's repetition of the path.
func unwrapExec(err error) error {
	var e *exec.Error
	if errors.As(err, &e) {
		return e.Err
	}
	return err
}

// validBitrate accepts a kbit/s count followed by 'k', within libmp3lame's 8k-320k.
func validBitrate(b string) error {
	digits, ok := strings.CutSuffix(b, "k")
	n, err := strconv.Atoi(digits)
	if !ok || err != nil || digits == "" || strings.TrimLeft(digits, "0123456789") != "" || n < 8 || n > 320 {
		return fmt.Errorf("mp3 bitrate %q: want kbit/s like \"192k\", from 8k to 320k", b)
	}
	return nil
}

// Check runs `ffmpeg -version` and `ffprobe -version`, and reports whether both work.
func (c *Converter) Check(ctx context.Context) error {
	for _, p := range []struct{ name, path string }{{"ffmpeg", c.ffmpeg}, {"ffprobe", c.ffprobe}} {
		var out, errb tail
		cmd, err := c.command(ctx, sandbox.Policy{}, "/", p.path, "-version")
		if err != nil {
			return fmt.Errorf("check %s: %w", p.name, err)
		}
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("check %s: %w", p.name, ctx.Err())
			}
			return fmt.Errorf("check %s (%s): %w: %s", p.name, p.path, err, oneLine(errb.String()))
		}
		if !bytes.Contains(out.Bytes(), []byte(" version ")) {
			return fmt.Errorf("check %s (%s): unexpected -version output %q", p.name, p.path, oneLine(out.String()))
		}
	}
	return nil
}

// env is the whole environment of ffmpeg and ffprobe: nothing of the server's own.
var env = []string{"LC_ALL=C"}

// command returns the command that runs program path with args in dir, confined by p (plus
// what every program needs) when the Converter has a sandbox. Canceling ctx kills it with
// anything it started; it is killed too when the process that started it dies.
func (c *Converter) command(ctx context.Context, p sandbox.Policy, dir, path string, args ...string) (*exec.Cmd, error) {
	if c.sandbox == nil {
		return sandbox.Unconfined(ctx, dir, env, path, args...), nil
	}
	cmd, err := c.sandbox.Command(ctx, sandbox.System().Merge(p), dir, env, path, args...)
	if err != nil {
		return nil, fmt.Errorf("confine %s: %w", path, err)
	}
	return cmd, nil
}

// inputArgs are the options that pin how ffmpeg and ffprobe read an input: local files only,
// and only real media containers.
func (c *Converter) inputArgs() []string {
	args := []string{"-protocol_whitelist", "file"}
	if c.formats != "" {
		args = append(args, "-format_whitelist", c.formats)
	}
	return args
}

// sandboxFailed reports whether err is the sandbox helper saying it could not start the program.
func sandboxFailed(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.Exited() && ee.ExitCode() == sandbox.ExitSetup
}

// startSpan starts a span of the converter's within ctx's.
func (c *Converter) startSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	if c.tracer == nil {
		return tracing.Tracer(nil).Start(ctx, name)
	}
	return c.tracer.Start(ctx, name)
}
