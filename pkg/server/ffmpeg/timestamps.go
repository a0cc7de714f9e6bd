package ffmpeg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/v2m/v2m/pkg/server/sandbox"
)

// Some files carry broken timestamps: a jump where segments were joined, audio that starts
// long after the file (a large first DTS), timestamps that go back, no duration in the
// header. ffmpeg then keeps the gaps or the offset, and the container's duration says more
// (or less) than the audio holds. So that the MP3 holds exactly the audio's samples, one after
// the other, the filter chain always starts with timestampFilter, which numbers the decoded
// samples afresh; the trim applies to that timeline, and the MP3 is checked against what
// the audio's packets hold rather than against the container's claim.

// timestampFilter gives every decoded frame the time of its first sample counted from the
// stream's first sample, whatever the input's timestamps said.
const timestampFilter = "asetpts=N/SR/TB"

// packets sums up the packets of one audio stream, as read by the demuxer without decoding.
type packets struct {
	Count int
	// First is the first packet's presentation time; End the latest time a packet ends at
	// (its pts plus its duration).
	First, End time.Duration
	// Sum is the sum of the packets' durations: how much audio the stream holds, whatever
	// its timestamps say, but short by up to a millisecond per packet in Matroska, whose
	// time base is the millisecond (AAC's 23.22 ms packets say 23 ms).
	Sum time.Duration
	// Runs is Sum measured by the timestamps where they run on without a gap (exact to the
	// time base over a whole run), and by the packets' durations across gaps and jumps.
	Runs time.Duration
	// Backwards counts packets whose DTS is below the previous one's; Gaps counts jumps of
	// the DTS by more than gapMin beyond the previous packet's end.
	Backwards, Gaps int

	line    []byte
	lastDur time.Duration
	lastDTS time.Duration
	lastEnd time.Duration
	haveDTS bool
}

// gapMin is the smallest jump of the timestamps that counts as a gap.
const gapMin = 100 * time.Millisecond

// Audio returns how long the stream's audio lasts: its packets' durations, counted by the
// timestamps where these run on (see Runs), or the span of its timestamps when the packets
// have no durations.
func (p *packets) Audio() time.Duration {
	if p.Sum > 0 {
		return p.Runs + p.lastDur
	}
	return max(p.End-p.First, 0)
}

// Broken reports whether the timestamps are not a plain sequence from near the start.
func (p *packets) Broken() bool {
	return p.Backwards > 0 || p.Gaps > 0 || p.First > gapMin
}

func (p *packets) String() string {
	if p == nil {
		return "not scanned"
	}
	return fmt.Sprintf("%d packets, %v of audio from %v to %v, %d backwards, %d gaps",
		p.Count, p.Sum, p.First, p.End, p.Backwards, p.Gaps)
}

func (p *packets) Write(b []byte) (int, error) {
	splitLines(&p.line, b, p.handle)
	return len(b), nil
}

// handle takes one "pts_time,dts_time,duration_time" line; N/A fields are empty.
func (p *packets) handle(line []byte) {
	f := bytes.Split(bytes.TrimSpace(line), []byte(","))
	if len(f) < 3 { // side data may follow
		return
	}
	pts, okP := signedSeconds(f[0])
	dts, okD := signedSeconds(f[1])
	dur, _ := signedSeconds(f[2])
	if !okP {
		pts, okP = dts, okD
	}
	if !okD {
		dts, okD = pts, okP
	}
	if !okP {
		return
	}
	dur = max(dur, 0)
	if p.Count == 0 || pts < p.First {
		p.First = pts
	}
	p.Count++
	p.Sum += dur
	p.End = max(p.End, pts+dur)
	if p.haveDTS {
		if step := dts - p.lastDTS; step >= 0 && p.lastDur > 0 && step <= p.lastDur*3/2+time.Millisecond {
			p.Runs += step
		} else {
			p.Runs += p.lastDur
		}
		if dts < p.lastDTS {
			p.Backwards++
		} else if p.lastEnd > p.lastDTS && dts > p.lastEnd+gapMin { // without durations, no gap can be told
			p.Gaps++
		}
	}
	p.lastDTS, p.lastEnd, p.lastDur, p.haveDTS = dts, dts+dur, dur, true
}

// signedSeconds parses "-0.023220" or "3.5"; "N/A" or "" is not ok.
func signedSeconds(b []byte) (time.Duration, bool) {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < -1e9 || f > 1e9 {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

// scanPackets reads the packets of stream index (among all streams) of the file at path
// with ffprobe, without decoding them: a fraction of the cost of decoding.
func (c *Converter) scanPackets(ctx context.Context, path string, index int) (*packets, error) {
	args := []string{"-hide_banner", "-v", "error"}
	args = append(args, c.inputArgs()...)
	args = append(args, "-select_streams", strconv.Itoa(index),
		"-show_entries", "packet=pts_time,dts_time,duration_time", "-of", "csv=p=0", "-i", "file:"+path)
	p := &packets{}
	var stderr tail
	c.log.DebugContext(ctx, "scan packets", "path", path, "stream", index)
	cmd, err := c.command(ctx, sandbox.Policy{ReadFiles: []string{path}}, filepath.Dir(path), c.ffprobe, args...)
	if err != nil {
		return nil, fmt.Errorf("scan packets: %w", err)
	}
	cmd.Stdout, cmd.Stderr = p, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("scan packets: %w", context.Cause(ctx))
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || sandboxFailed(err) || systemTrouble(stderr.String()) {
			return nil, fmt.Errorf("scan packets: %v: %s", err, oneLine(stderr.String()))
		}
		// A damaged file: what was read is what there is; the conversion tells the rest.
	}
	p.handle(p.line)
	return p, nil
}
