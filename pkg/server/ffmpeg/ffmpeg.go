// Package ffmpeg implements server.Converter with the ffmpeg and ffprobe programs.
//
// A conversion probes the input with ffprobe, extracts its first audio track into an MP3
// with ffmpeg's libmp3lame encoder, reporting progress as it goes, and probes the MP3
// afterwards to check that it holds all of the input's audio. Input that cannot be
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
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// installHint is how to get both programs on the Debian family.
const installHint = "install it with `sudo apt-get install ffmpeg`"

// Config configures a Converter.
type Config struct {
	// FFmpeg and FFprobe are the programs' paths; "" looks up "ffmpeg" and "ffprobe" in PATH.
	FFmpeg, FFprobe string
	// Bitrate selects the MP3 encoding: "" is variable bitrate at quality 2 (about
	// 170-210 kbit/s); otherwise a constant bitrate such as "192k", from 8k to 320k.
	Bitrate string
	// Timeout limits one conversion; 0 means no limit. A conversion that takes longer
	// fails permanently.
	Timeout time.Duration
	// Logger receives debug records of the commands run; nil discards them.
	Logger *slog.Logger
}

// Converter converts videos to MP3 with ffmpeg. It is safe for concurrent use.
type Converter struct {
	ffmpeg, ffprobe string
	bitrate         string
	timeout         time.Duration
	log             *slog.Logger
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
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Converter{ffmpeg: ff, ffprobe: fp, bitrate: cfg.Bitrate, timeout: cfg.Timeout, log: log}, nil
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
		cmd := command(ctx, p.path, "-version")
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
