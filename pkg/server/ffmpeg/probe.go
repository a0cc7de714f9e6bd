package ffmpeg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/sandbox"
	"github.com/v2m/v2m/pkg/server/tracing"
)

// Info is what ffprobe tells about a media file.
type Info struct {
	// FormatName is the demuxer's name list, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "mp3".
	FormatName string
	// Duration is the container's duration; 0 when unknown.
	Duration time.Duration
	// BitRate is the container's overall bit rate in bit/s; 0 when unknown.
	BitRate  int64
	HasVideo bool
	HasAudio bool
	// AudioCodec is the first audio stream's codec, e.g. "aac"; "" without audio.
	AudioCodec string
	// AudioDuration is the first audio stream's duration, from the stream or, for
	// Matroska, its DURATION tag; 0 when unknown.
	AudioDuration time.Duration
	// Audio lists the audio streams in file order.
	Audio []AudioStream

	// meta is what the MP3 takes from the file besides its audio, read by the same ffprobe.
	meta sourceMeta
}

// AudioStream is one audio stream of a media file.
type AudioStream struct {
	Index      int    // the stream's index among all streams, for -map 0:Index
	Codec      string // e.g. "aac"
	Language   string // ISO 639-2 as tagged, lower case; "" when untagged
	Default    bool   // the stream has the default disposition
	Channels   int
	SampleRate int
	// Duration is what the container claims: the stream's duration or, for Matroska, its
	// DURATION tag (which counts from the file's start); 0 when unknown.
	Duration time.Duration
}

// probeOutput is the JSON that ffprobe prints for probeArgs.
type probeOutput struct {
	Streams []struct {
		Index       int               `json:"index"`
		CodecType   string            `json:"codec_type"`
		CodecName   string            `json:"codec_name"`
		Duration    string            `json:"duration"`
		Channels    int               `json:"channels"`
		SampleRate  string            `json:"sample_rate"`
		Disposition map[string]int    `json:"disposition"`
		Tags        map[string]string `json:"tags"`
	} `json:"streams"`
	Chapters []struct {
		Start string            `json:"start_time"`
		End   string            `json:"end_time"`
		Tags  map[string]string `json:"tags"`
	} `json:"chapters"`
	Format struct {
		FormatName string            `json:"format_name"`
		Duration   string            `json:"duration"`
		BitRate    string            `json:"bit_rate"`
		Tags       map[string]string `json:"tags"`
	} `json:"format"`
}

// maxProbeOutput bounds ffprobe's JSON, tags and chapters included; a file with absurdly
// many streams or tags is not a video.
const maxProbeOutput = 4 << 20

// probeEntries are what Probe asks ffprobe for: the streams and the container for the
// conversion, and the tags, pictures and chapters for the MP3's metadata.
const probeEntries = "format=format_name,duration,bit_rate:format_tags" +
	":stream=index,codec_type,codec_name,duration,channels,sample_rate:stream_tags" +
	":stream_disposition=default,attached_pic:chapter=start_time,end_time:chapter_tags=title"

// Probe describes the media file at path. A file that is empty or not media gives an
// EINVALID error marked server.Permanent whose message says why; a file that cannot be
// read, or ffprobe failing to run, gives a plain error.
func (c *Converter) Probe(ctx context.Context, path string) (Info, error) {
	ctx, span := c.startSpan(ctx, "ffprobe")
	defer span.End()
	in, err := c.probe(ctx, path)
	tracing.Fail(span, err)
	return in, err
}

// probe is Probe, in its span.
func (c *Converter) probe(ctx context.Context, path string) (Info, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Info{}, fmt.Errorf("probe: %w", err)
	}
	if !st.Mode().IsRegular() {
		return Info{}, fmt.Errorf("probe %s: not a regular file", path)
	}
	if st.Size() == 0 {
		return Info{}, server.Permanent(server.Errorf(server.EINVALID, "the file is empty"))
	}

	input := "file:" + path
	args := []string{"-hide_banner", "-v", "error"}
	args = append(args, c.inputArgs()...)
	args = append(args, "-show_entries", probeEntries, "-of", "json", "-i", input)
	var stdout limitedBuffer
	stdout.limit = maxProbeOutput
	var stderr tail
	cmd, err := c.command(ctx, sandbox.Policy{ReadFiles: []string{path}}, filepath.Dir(path), c.ffprobe, args...)
	if err != nil {
		return Info{}, fmt.Errorf("probe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	c.log.DebugContext(ctx, "ffprobe", "path", path)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Info{}, fmt.Errorf("probe %s: %w", path, context.Cause(ctx))
		}
		if sandboxFailed(err) {
			return Info{}, fmt.Errorf("probe %s: %s", path, oneLine(stderr.String()))
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return Info{}, fmt.Errorf("probe %s: run %s: %w", path, c.ffprobe, err)
		}
		msg := stderr.String()
		if strings.Contains(msg, "not on whitelist") {
			// A playlist, a reference to other files, or a format we do not read.
			return Info{}, server.Permanent(server.Errorf(server.EINVALID, "not a supported media file"))
		}
		if systemTrouble(msg) {
			return Info{}, fmt.Errorf("probe %s: %s", path, reason(msg, input, path))
		}
		return Info{}, server.Permanent(server.Errorf(server.EINVALID,
			"not a video or audio file: %s", reason(msg, input, path)))
	}
	if stdout.over {
		return Info{}, server.Permanent(server.Errorf(server.EINVALID, "not a video or audio file: too many streams or tags"))
	}
	var out probeOutput
	if err := json.Unmarshal(stdout.buf, &out); err != nil {
		return Info{}, fmt.Errorf("probe %s: decode ffprobe output: %w", path, err)
	}
	info := Info{
		FormatName: out.Format.FormatName,
		Duration:   seconds(out.Format.Duration),
	}
	if br, err := strconv.ParseInt(out.Format.BitRate, 10, 64); err == nil && br > 0 {
		info.BitRate = br
	}
	for _, s := range out.Streams {
		switch s.CodecType {
		case "video":
			info.HasVideo = true
		case "audio":
			a := AudioStream{Index: s.Index, Codec: s.CodecName, Language: strings.ToLower(s.Tags["language"]),
				Default: s.Disposition["default"] == 1, Channels: s.Channels, Duration: seconds(s.Duration)}
			a.SampleRate, _ = strconv.Atoi(s.SampleRate)
			if a.Duration == 0 {
				a.Duration = clock(lowerKeys(s.Tags)["duration"])
			}
			info.Audio = append(info.Audio, a)
			if info.HasAudio {
				continue
			}
			info.HasAudio = true
			info.AudioCodec = a.Codec
			info.AudioDuration = a.Duration
		}
	}
	info.meta = metaOf(&out)
	return info, nil
}

// systemTrouble reports whether a program's stderr tells of a fault of the machine or of
// the installation rather than of the media: such a failure is not the user's to fix.
func systemTrouble(stderr string) bool {
	for _, m := range []string{
		"Permission denied",
		"No such file or directory",
		"No space left on device",
		"Cannot allocate memory",
		"Too many open files",
		"Input/output error",
		"Read-only file system",
		"Disk quota exceeded",
		"Resource temporarily unavailable",
		// A program that does not take our options, or lacks the MP3 encoder.
		"Option not found",
		"Unrecognized option",
		"Failed to set value",
		"Unknown encoder",
		"Encoder not found",
	} {
		if strings.Contains(stderr, m) {
			return true
		}
	}
	return false
}

// seconds parses ffprobe's "3.023000"; "N/A", "" or garbage give 0.
func seconds(s string) time.Duration {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f > 1e9 {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

// clock parses Matroska's "00:00:03.023000000"; anything else gives 0.
func clock(s string) time.Duration {
	h, rest, ok := strings.Cut(s, ":")
	if !ok {
		return 0
	}
	m, sec, ok := strings.Cut(rest, ":")
	if !ok {
		return 0
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	ss := seconds(sec)
	if err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || (ss == 0 && strings.Trim(sec, "0.") != "") {
		return 0
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute + ss
}

// limitedBuffer keeps up to limit bytes and notes whether more came.
type limitedBuffer struct {
	buf   []byte
	limit int
	over  bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - len(b.buf); len(p) > room {
		b.buf = append(b.buf, p[:max(room, 0)]...)
		b.over = true
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}
