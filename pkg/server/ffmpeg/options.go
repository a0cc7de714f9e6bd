package ffmpeg

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// job is one conversion as planned from the probe and the job's options.
type job struct {
	in   Info
	conv server.Conversion
	// audio is the stream to convert; track its position among the audio streams.
	audio AudioStream
	track int
	// pk are the stream's packets; nil until scanned (see plan).
	pk *packets
	// claim is how long the container says the audio lasts (0: it does not say); length how
	// long it lasts (its packets' durations, or the claim until they are scanned); span how
	// long the MP3 should last once trimmed.
	claim, length, span time.Duration
	// seek is where ffmpeg seeks the input to before decoding (-ss before -i), to skip a
	// long start quickly; the filters trim the rest. 0 decodes from the start.
	seek time.Duration
	// loud is the first loudness pass's measure; nil without normalisation, or when the
	// audio is silent.
	loud *loudness
	// joined is how long the MP3 that the parallel encode wrote lasts (its samples); 0 when
	// it was encoded serially.
	joined time.Duration
}

// endSlack is how far past the audio's end a job's End may be and still mean "to the end":
// the packets' durations in Matroska are rounded to the millisecond.
func endSlack(length time.Duration) time.Duration { return max(50*time.Millisecond, length/100) }

// plan picks the audio stream and checks the options against the source. Options that the
// source cannot satisfy give a permanent EINVALID error that says why.
//
// The stream's packets are scanned (or pk, from an earlier scan of the same stream, is used)
// when the job trims, or when the container does not say how long the audio is. Otherwise
// the container's claim stands for now, and encode scans the packets only if the MP3 does not
// last what the claim says: most files tell the truth, and a scan reads the whole file.
func (c *Converter) plan(ctx context.Context, src string, in Info, conv server.Conversion, pk *packets) (*job, error) {
	o := conv.Options
	track, err := pickAudio(in.Audio, o)
	if err != nil {
		return nil, err
	}
	j := &job{in: in, conv: conv, audio: in.Audio[track], track: track}
	j.claim = j.audio.Duration
	if j.claim <= 0 {
		j.claim = in.Duration
	}
	if pk == nil && (o.Start > 0 || o.End > 0 || j.claim <= 0) {
		if pk, err = c.scanPackets(ctx, src, j.audio.Index); err != nil {
			return nil, err
		}
	}
	if err := j.setPackets(pk); err != nil {
		return nil, err
	}
	end := j.length
	if o.End > 0 {
		if j.length > 0 && o.End > j.length+endSlack(j.length) {
			return nil, server.Permanent(server.Errorf(server.EINVALID,
				"the end (%s) is after the end of the audio (%s)", secs(o.End), secs(j.length)))
		}
		end = min(o.End, end)
		if j.length <= 0 {
			end = o.End
		}
	}
	if o.Start > 0 && j.length > 0 && o.Start >= j.length {
		return nil, server.Permanent(server.Errorf(server.EINVALID,
			"the start (%s) is beyond the end of the audio (%s)", secs(o.Start), secs(j.length)))
	}
	if end > 0 {
		j.span = end - o.Start
	}
	// Seeking goes by the container's timestamps; where they follow the samples, it lands
	// where the samples' timeline has Start, within the stream's small offset.
	if o.Start >= seekMin && j.pk != nil && !j.pk.Broken() {
		j.seek = o.Start
	}
	c.log.DebugContext(ctx, "plan", "track", track, "stream", j.audio.Index, "packets", j.pk.String(), "span", j.span)
	return j, nil
}

// setPackets takes the stream's packets (nil: not scanned) and sets how long the audio
// lasts: what its packets hold, or the container's claim without them. A file cut short
// still claims its whole duration, and ffmpeg converts what is there without an error: its
// packets end early, which is a permanent error. (A file with broken timestamps ends where
// its timestamps say, however little audio it holds.)
func (j *job) setPackets(pk *packets) error {
	j.pk = pk
	j.length = j.claim
	if pk == nil {
		return nil
	}
	if tol := max(2*time.Second, j.claim/50); j.claim > 0 && pk.Count > 0 && pk.End < j.claim-tol {
		return server.Permanent(server.Errorf(server.EINVALID,
			"the video is truncated: its audio stops at %s of %s", secs(pk.End), secs(j.claim)))
	}
	if l := pk.Audio(); l > 0 {
		j.length = l
	}
	return nil
}

// scanFor scans the packets of the stream a job of conv would convert.
func (c *Converter) scanFor(ctx context.Context, src string, in Info, conv server.Conversion) (*packets, error) {
	track, err := pickAudio(in.Audio, conv.Options)
	if err != nil {
		return nil, err
	}
	return c.scanPackets(ctx, src, in.Audio[track].Index)
}

// pickAudio returns the position among streams of the audio stream that o asks for: Track,
// else the first in Language, else the first with the default disposition, else the first.
func pickAudio(streams []AudioStream, o server.JobOptions) (int, error) {
	switch {
	case o.Track != nil:
		if *o.Track < 0 || *o.Track >= len(streams) {
			return 0, server.Permanent(server.Errorf(server.EINVALID,
				"%s; track %d does not exist", describeAudio(streams), *o.Track))
		}
		return *o.Track, nil
	case o.Language != "":
		for i, s := range streams {
			if sameLanguage(s.Language, o.Language) {
				return i, nil
			}
		}
		return 0, server.Permanent(server.Errorf(server.EINVALID,
			"%s; none is in language %q", describeAudio(streams), o.Language))
	}
	for i, s := range streams {
		if s.Default {
			return i, nil
		}
	}
	return 0, nil
}

// terminology maps the ISO 639-2/B (bibliographic) codes that differ from their /T
// (terminology) codes to these: Matroska files often say "fre" or "ger" for "fra", "deu".
var terminology = map[string]string{
	"alb": "sqi", "arm": "hye", "baq": "eus", "bur": "mya", "chi": "zho", "cze": "ces", "dut": "nld",
	"fre": "fra", "geo": "kat", "ger": "deu", "gre": "ell", "ice": "isl", "mac": "mkd", "mao": "mri",
	"may": "msa", "per": "fas", "rum": "ron", "slo": "slk", "tib": "bod", "wel": "cym",
}

// sameLanguage reports whether two ISO 639-2 codes, /B or /T, name the same language.
func sameLanguage(a, b string) bool {
	if t, ok := terminology[a]; ok {
		a = t
	}
	if t, ok := terminology[b]; ok {
		b = t
	}
	return a != "" && a == b
}

// describeAudio says what audio tracks there are: "the video has 2 audio tracks (0: eng,
// 1: fra)"; "und" marks a track without a language.
func describeAudio(streams []AudioStream) string {
	var b strings.Builder
	fmt.Fprintf(&b, "the video has %d audio track", len(streams))
	if len(streams) != 1 {
		b.WriteString("s")
	}
	if len(streams) == 0 {
		return b.String()
	}
	b.WriteString(" (")
	for i, s := range streams {
		if i > 0 {
			b.WriteString(", ")
		}
		lang := s.Language
		if lang == "" {
			lang = "und"
		}
		fmt.Fprintf(&b, "%d: %s", i, lang)
		if i == 9 && len(streams) > 10 {
			b.WriteString(", …")
			break
		}
	}
	b.WriteString(")")
	return b.String()
}

// mp3Rates are the sample rates an MP3 can have.
var mp3Rates = []int{8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000}

// outRate returns the MP3's sample rate for a source of sr: sr itself when an MP3 can have
// it, else the nearest common rate.
func outRate(sr int) int {
	for _, r := range mp3Rates {
		if r == sr {
			return sr
		}
	}
	if sr > 48000 {
		return 48000
	}
	return 44100
}

// seekMin is the least Start that is reached by seeking rather than by decoding from the
// start: decoding is fast (a minute of AAC in about 35 ms), and a seek is exact only to the
// stream's offset.
const seekMin = 30 * time.Second

// seekArgs are ffmpeg's input options for the job's seek.
func (j *job) seekArgs() []string {
	if j.seek <= 0 {
		return nil
	}
	return []string{"-ss", fsecs(j.seek)}
}

// baseFilters are the filters that come before the loudness filter: new timestamps, then
// the trim of what the seek left.
func (j *job) baseFilters() []string {
	f := []string{timestampFilter}
	o := j.conv.Options
	start, end := o.Start-j.seek, o.End-j.seek
	if start > 0 || o.End > 0 {
		t := "atrim=start=" + fsecs(start)
		if o.End > 0 {
			t += ":end=" + fsecs(end)
		}
		f = append(f, t, "asetpts=PTS-STARTPTS")
	}
	return f
}

// fsecs formats d in seconds for a filter option, e.g. "1.5".
func fsecs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

// audioArgs are ffmpeg's output options for the MP3's audio: the stream, the filters, the
// channels and the encoder's settings.
func (c *Converter) audioArgs(j *job) []string {
	o := j.conv.Options
	f := j.baseFilters()
	if j.loud != nil {
		f = append(f, j.loud.applyFilter(o.Loudness))
	}
	args := []string{"-map", "0:" + strconv.Itoa(j.audio.Index), "-af", strings.Join(f, ",")}
	if o.Mono {
		args = append(args, "-ac", "1")
	}
	// loudnorm works at 192 kHz; an MP3 cannot have every source's rate.
	if r := outRate(j.audio.SampleRate); j.loud != nil || (j.audio.SampleRate > 0 && r != j.audio.SampleRate) {
		args = append(args, "-ar", strconv.Itoa(r))
	}
	args = append(args, "-c:a", "libmp3lame")
	switch {
	case o.Bitrate > 0:
		args = append(args, "-b:a", strconv.Itoa(o.Bitrate)+"k")
	case o.Quality != nil:
		args = append(args, "-q:a", strconv.Itoa(*o.Quality))
	case c.bitrate != "":
		args = append(args, "-b:a", c.bitrate)
	default:
		args = append(args, "-q:a", strconv.Itoa(server.DefaultQuality))
	}
	return args
}
