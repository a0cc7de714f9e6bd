package ffmpeg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/sandbox"
)

// EBU R128 normalisation takes two passes of ffmpeg's loudnorm filter: the first measures
// the audio, the second applies one linear gain computed from that measure, so that the
// whole MP3 gets the same gain (a one-pass loudnorm rides the gain dynamically).

// Targets of the normalisation besides the integrated loudness.
const (
	truePeak      = -1.0 // dBTP
	loudnessRange = 11.0 // LU
)

// silentBelow is the integrated loudness (LUFS) under which the audio counts as silence,
// which no gain should raise.
const silentBelow = -70.0

// loudness is loudnorm's measure of the audio, in its own words.
type loudness struct {
	InputI      string `json:"input_i"`
	InputTP     string `json:"input_tp"`
	InputLRA    string `json:"input_lra"`
	InputThresh string `json:"input_thresh"`
	Offset      string `json:"target_offset"`
}

// measureFilter is the first pass's loudnorm.
func measureFilter(target float64) string {
	return fmt.Sprintf("loudnorm=I=%s:TP=%s:LRA=%s:print_format=json", num(target), num(truePeak), num(loudnessRange))
}

// tpMargin is the headroom below truePeak that a gain of our own leaves for the resampling
// and the MP3 encoding, which make peaks of their own.
const tpMargin = 0.5

// applyFilter is the second pass's filter: loudnorm with the first pass's measure, in its
// linear mode, which is one gain over the whole audio. Where loudnorm would not keep to
// one gain (the gain would push the true peak over truePeak, or the loudness range is
// wider than loudnessRange) it falls back to compressing and limiting at 192 kHz, whose
// peaks come back above -1 dBTP once resampled and encoded; then one gain of our own,
// lowered to keep the peak, is applied instead, and the MP3 stays below the target.
func (l *loudness) applyFilter(target float64) string {
	in, _ := strconv.ParseFloat(l.InputI, 64)
	tp, _ := strconv.ParseFloat(l.InputTP, 64)
	lra, _ := strconv.ParseFloat(l.InputLRA, 64)
	gain := target - in
	if tp+gain > truePeak || lra > loudnessRange {
		gain = min(gain, truePeak-tpMargin-tp)
		return fmt.Sprintf("volume=%.2fdB", gain)
	}
	return fmt.Sprintf("loudnorm=I=%s:TP=%s:LRA=%s:measured_I=%s:measured_TP=%s:measured_LRA=%s:measured_thresh=%s:offset=%s:linear=true:print_format=none",
		num(target), num(truePeak), num(loudnessRange), l.InputI, l.InputTP, l.InputLRA, l.InputThresh, l.Offset)
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// parseLoudness finds loudnorm's JSON in ffmpeg's stderr, among whatever else ffmpeg said,
// and checks that every value is a finite number. It returns nil, without error, for
// silent audio (which loudnorm measures as -inf, or nearly).
func parseLoudness(stderr string) (*loudness, error) {
	i := strings.LastIndex(stderr, `"input_i"`)
	if i < 0 {
		return nil, errors.New("no loudnorm measure in ffmpeg's output")
	}
	start := strings.LastIndex(stderr[:i], "{")
	n := strings.Index(stderr[i:], "}")
	if start < 0 || n < 0 {
		return nil, errors.New("loudnorm's measure is cut")
	}
	var l loudness
	if err := json.Unmarshal([]byte(stderr[start:i+n+1]), &l); err != nil {
		return nil, fmt.Errorf("loudnorm's measure: %w", err)
	}
	in, err := strconv.ParseFloat(l.InputI, 64)
	if err != nil || math.IsNaN(in) || math.IsInf(in, 1) {
		return nil, fmt.Errorf("loudnorm's measure: input_i %q", l.InputI)
	}
	if math.IsInf(in, -1) || in < silentBelow {
		return nil, nil
	}
	for name, v := range map[string]string{"input_tp": l.InputTP, "input_lra": l.InputLRA,
		"input_thresh": l.InputThresh, "target_offset": l.Offset} {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			// -inf thresholds or peaks come with silence; anything else is a surprise.
			if math.IsInf(f, -1) {
				return nil, nil
			}
			return nil, fmt.Errorf("loudnorm's measure: %s %q", name, v)
		}
	}
	return &l, nil
}

// measure runs the first loudness pass over the job's span of audio, feeding progress to pw.
func (c *Converter) measure(ctx context.Context, src, work string, j *job, pw *progressWriter) (*loudness, error) {
	f := append(j.baseFilters(), measureFilter(j.conv.Options.Loudness))
	// loudnorm prints its measure at the info level.
	args := []string{"-nostdin", "-hide_banner", "-nostats", "-v", "info", "-y"}
	args = append(args, c.inputArgs()...)
	args = append(args, j.seekArgs()...)
	args = append(args, "-i", "file:"+src, "-map", "0:"+strconv.Itoa(j.audio.Index), "-af", strings.Join(f, ","),
		"-progress", "pipe:1", "-f", "null", "-")
	var stderr tail
	cmd, err := c.command(ctx, sandbox.Policy{ReadFiles: []string{src}}, work, c.ffmpeg, args...)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, &stderr
	c.log.DebugContext(ctx, "ffmpeg", "args", args)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ffmpeg: %w", context.Cause(ctx))
		}
		var ee *exec.ExitError
		msg := stderr.String()
		if !errors.As(err, &ee) || sandboxFailed(err) || !ee.Exited() || systemTrouble(msg) {
			return nil, fmt.Errorf("measure loudness: %v: %s", err, reason(msg, "file:"+src, src))
		}
		return nil, server.Permanent(server.Errorf(server.EINVALID,
			"the video could not be converted: %s", reason(errorLines(msg), "file:"+src, src)))
	}
	l, err := parseLoudness(stderr.String())
	if err != nil {
		return nil, fmt.Errorf("measure loudness: %w", err)
	}
	return l, nil
}

// errorLines drops the info-level lines that describe the input and output from ffmpeg's
// stderr, keeping what may tell why it failed.
func errorLines(stderr string) string {
	var keep []string
	for l := range strings.SplitSeq(stderr, "\n") {
		if t := strings.TrimSpace(l); t == "" || strings.HasPrefix(l, " ") || strings.HasPrefix(t, "Input #") ||
			strings.HasPrefix(t, "Output #") || strings.HasPrefix(t, "Stream mapping") || strings.HasPrefix(t, "Press [q]") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// workDir is where a conversion's programs run.
func workDir(dst string) string { return filepath.Dir(dst) }
