package ffmpeg_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testmedia"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/ffmpeg"
)

// mp3Facts is what ffprobe says of an MP3.
type mp3Facts struct {
	Format, Codec string
	Channels      int
	SampleRate    int
	BitRate       int64         // the container's overall bit rate
	Duration      time.Duration // the container's duration, with the encoder's delay and padding
	Decoded       time.Duration // decoded samples ÷ sample rate: what a player plays
	PacketSizes   int           // distinct frame sizes: 1 or 2 at a constant bitrate, many in VBR
	Streams       int
}

func (f mp3Facts) VBR() bool { return f.PacketSizes > 3 }

// probeMP3 describes the MP3 at path with ffprobe, decoding it to count its samples.
func probeMP3(t testing.TB, path string) mp3Facts {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "ffprobe"), "-v", "error",
		"-show_entries", "format=format_name,duration,bit_rate:stream=codec_name,channels,sample_rate:frame=nb_samples",
		"-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	pkts, err := exec.Command(testenv.Tool(t, "ffprobe"), "-v", "error", "-show_entries", "packet=size", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p struct {
		Streams []struct {
			CodecName  string `json:"codec_name"`
			Channels   int    `json:"channels"`
			SampleRate string `json:"sample_rate"`
		} `json:"streams"`
		Packets []struct {
			Size string `json:"size"`
		} `json:"packets"`
		Frames []struct {
			NbSamples int `json:"nb_samples"`
		} `json:"frames"`
		Format struct {
			FormatName string `json:"format_name"`
			Duration   string `json:"duration"`
			BitRate    string `json:"bit_rate"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(pkts, &p); err != nil {
		t.Fatal(err)
	}
	f := mp3Facts{Format: p.Format.FormatName, Streams: len(p.Streams)}
	if len(p.Streams) > 0 {
		f.Codec, f.Channels = p.Streams[0].CodecName, p.Streams[0].Channels
		f.SampleRate, _ = strconv.Atoi(p.Streams[0].SampleRate)
	}
	f.BitRate, _ = strconv.ParseInt(p.Format.BitRate, 10, 64)
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	f.Duration = time.Duration(d * float64(time.Second))
	n := 0
	for _, fr := range p.Frames {
		n += fr.NbSamples
	}
	if f.SampleRate > 0 {
		f.Decoded = time.Duration(float64(n) / float64(f.SampleRate) * float64(time.Second))
	}
	sizes := map[string]bool{}
	for _, pk := range p.Packets {
		sizes[pk.Size] = true
	}
	f.PacketSizes = len(sizes)
	return f
}

// decodedAudio is how long audio stream spec ("a:1") of the file at path lasts when decoded:
// its samples ÷ its sample rate, whatever its timestamps say.
func decodedAudio(t testing.TB, path, spec string) time.Duration {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "ffprobe"), "-v", "error", "-select_streams", spec,
		"-show_entries", "stream=sample_rate:frame=nb_samples", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p struct {
		Streams []struct {
			SampleRate string `json:"sample_rate"`
		} `json:"streams"`
		Frames []struct {
			NbSamples int `json:"nb_samples"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	var n, sr float64
	if len(p.Streams) == 1 {
		sr, _ = strconv.ParseFloat(p.Streams[0].SampleRate, 64)
	}
	for _, f := range p.Frames {
		n += float64(f.NbSamples)
	}
	if sr == 0 || n == 0 {
		t.Fatalf("%s: no audio frames in %s", path, spec)
	}
	return time.Duration(n / sr * float64(time.Second))
}

// checkMP3 checks what every MP3 must be: one MP3 stream.
func checkMP3(t testing.TB, f mp3Facts) {
	t.Helper()
	if f.Format != "mp3" || f.Codec != "mp3" || f.Streams != 1 || f.Decoded <= 0 {
		t.Errorf("output: %+v, want one mp3 stream", f)
	}
}

// convert converts src with opts and returns ffprobe's facts of the MP3, and the progress.
func convertWith(t *testing.T, c *ffmpeg.Converter, src string, opts server.JobOptions) (mp3Facts, []int) {
	t.Helper()
	f, pcts, _ := convertTo(t, c, src, opts)
	return f, pcts
}

// convertTo is convert that also returns the MP3's path.
func convertTo(t *testing.T, c *ffmpeg.Converter, src string, opts server.JobOptions) (mp3Facts, []int, string) {
	t.Helper()
	// These tests are about the audio: a cover picture would add a stream and count in the
	// container's bit rate (cover_test.go tests the cover).
	opts.NoCover = true
	dst := filepath.Join(t.TempDir(), "out.mp3")
	pl := &progressLog{t: t}
	if err := c.Convert(t.Context(), src, dst, server.Conversion{Options: opts}, pl.report); err != nil {
		t.Fatalf("Convert(%+v): %v", opts, err)
	}
	if n := len(pl.pcts); n < 2 || pl.pcts[n-1] != 100 {
		t.Errorf("progress %v: want several reports ending at 100", pl.pcts)
	}
	f := probeMP3(t, dst)
	checkMP3(t, f)
	return f, pl.pcts, dst
}

func ptr[T any](v T) *T { return &v }

const durTol = 50 * time.Millisecond

func TestConvertQualityAndBitrate(t *testing.T) {
	src := media(t, testmedia.Stereo)
	for _, tc := range []struct {
		name     string
		cfg      ffmpeg.Config
		opts     server.JobOptions
		wantCBR  int64 // bit/s; 0 for VBR
		minBR    int64 // for VBR, a band of the overall bit rate
		maxBR    int64
		channels int
	}{
		{name: "default VBR -V2", opts: server.JobOptions{}, minBR: 60e3, maxBR: 260e3},
		{name: "-V0", opts: server.JobOptions{Quality: ptr(0)}, minBR: 60e3, maxBR: 320e3},
		{name: "-V9", opts: server.JobOptions{Quality: ptr(9)}, minBR: 20e3, maxBR: 120e3},
		{name: "CBR 128k", opts: server.JobOptions{Bitrate: 128}, wantCBR: 128e3},
		{name: "CBR 320k", opts: server.JobOptions{Bitrate: 320}, wantCBR: 320e3},
		{name: "server's 96k", cfg: ffmpeg.Config{Bitrate: "96k"}, wantCBR: 96e3},
		{name: "job's -V4 over the server's 96k", cfg: ffmpeg.Config{Bitrate: "96k"}, opts: server.JobOptions{Quality: ptr(4)},
			minBR: 40e3, maxBR: 200e3},
		{name: "job's 192k over the server's 96k", cfg: ffmpeg.Config{Bitrate: "96k"}, opts: server.JobOptions{Bitrate: 192}, wantCBR: 192e3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newConverter(t, tc.cfg)
			f, _ := convertWith(t, c, src, tc.opts)
			if f.Channels != 2 {
				t.Errorf("channels %d, want 2", f.Channels)
			}
			if tc.wantCBR > 0 {
				if f.VBR() || f.BitRate < tc.wantCBR*97/100 || f.BitRate > tc.wantCBR*103/100 {
					t.Errorf("bit rate %d with %d frame sizes, want CBR %d", f.BitRate, f.PacketSizes, tc.wantCBR)
				}
			} else if !f.VBR() || f.BitRate < tc.minBR || f.BitRate > tc.maxBR {
				t.Errorf("bit rate %d with %d frame sizes, want VBR in %d-%d", f.BitRate, f.PacketSizes, tc.minBR, tc.maxBR)
			}
			t.Logf("%s: %d bit/s, %d frame sizes, %v", tc.name, f.BitRate, f.PacketSizes, f.Decoded)
		})
	}
}

func TestConvertVBRQualityOrders(t *testing.T) {
	// Better quality takes more bits: -V0 > -V2 (the default) > -V9.
	c := newConverter(t, ffmpeg.Config{})
	src := media(t, testmedia.Loud) // a clipped tone's harmonics make the encoder work
	var br []int64
	for _, q := range []*int{ptr(0), nil, ptr(9)} {
		f, _ := convertWith(t, c, src, server.JobOptions{Quality: q})
		br = append(br, f.BitRate)
	}
	if !(br[0] > br[1] && br[1] > br[2]) {
		t.Errorf("bit rates of -V0, -V2, -V9: %v, want falling", br)
	}
	t.Logf("-V0, -V2, -V9: %v bit/s", br)
}

func TestConvertTrim(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	src := media(t, testmedia.Stereo) // 4 s of audio
	audio := decodedAudio(t, src, "a:0")
	for _, tc := range []struct {
		start, end time.Duration
		want       time.Duration
	}{
		{start: time.Second, end: 2500 * time.Millisecond, want: 1500 * time.Millisecond},
		{start: 1500 * time.Millisecond, want: audio - 1500*time.Millisecond},
		{end: 700 * time.Millisecond, want: 700 * time.Millisecond},
		{start: 250 * time.Millisecond, end: audio, want: audio - 250*time.Millisecond},
	} {
		t.Run(tc.start.String()+"-"+tc.end.String(), func(t *testing.T) {
			t.Parallel()
			f, pcts := convertWith(t, c, src, server.JobOptions{Start: tc.start, End: tc.end, Bitrate: 128})
			if !within(f.Decoded, tc.want, durTol) {
				t.Errorf("MP3 plays %v, want %v", f.Decoded, tc.want)
			}
			if !within(f.Duration, tc.want, 2*durTol) {
				t.Errorf("MP3 lasts %v by ffprobe, want %v", f.Duration, tc.want)
			}
			// The Xing frame weighs on a short MP3's overall bit rate.
			if f.VBR() || f.BitRate < 124e3 || f.BitRate > 140e3 || f.Channels != 2 {
				t.Errorf("bit rate %d, channels %d: want 128k stereo", f.BitRate, f.Channels)
			}
			t.Logf("start %v end %v: MP3 plays %v (ffprobe %v), progress %v", tc.start, tc.end, f.Decoded, f.Duration, pcts)
		})
	}
}

func TestConvertTrimBeyondTheEnd(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	src := media(t, testmedia.Stereo) // 4 s of audio
	for name, tc := range map[string]struct {
		opts server.JobOptions
		want string
	}{
		"end":   {server.JobOptions{End: 6 * time.Second}, "the end (6.0s) is after the end of the audio (4.0s)"},
		"start": {server.JobOptions{Start: 5 * time.Second}, "the start (5.0s) is beyond the end of the audio (4.0s)"},
		"both":  {server.JobOptions{Start: 5 * time.Second, End: 8 * time.Second}, "the end (8.0s) is after the end"},
	} {
		t.Run(name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "out.mp3")
			err := c.Convert(t.Context(), src, dst, server.Conversion{Options: tc.opts}, nil)
			if !server.IsPermanent(err) || !server.IsCode(err, server.EINVALID) || !strings.Contains(server.ErrorMessage(err), tc.want) {
				t.Errorf("Convert: %v, want a permanent error saying %q", err, tc.want)
			}
		})
	}
}

func TestConvertTracks(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	src := media(t, testmedia.TwoTracks) // 0: eng 3 s at 440 Hz; 1: fra 2 s at 880 Hz, default
	eng, fra := decodedAudio(t, src, "a:0"), decodedAudio(t, src, "a:1")
	for name, tc := range map[string]struct {
		opts server.JobOptions
		want time.Duration
	}{
		"default is the track marked default": {server.JobOptions{}, fra},
		"track 0":                             {server.JobOptions{Track: ptr(0)}, eng},
		"track 1":                             {server.JobOptions{Track: ptr(1)}, fra},
		"language eng":                        {server.JobOptions{Language: "eng"}, eng},
		"language fra":                        {server.JobOptions{Language: "fra"}, fra},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f, _ := convertWith(t, c, src, tc.opts)
			if !within(f.Decoded, tc.want, durTol) {
				t.Errorf("MP3 plays %v, want %v (eng %v, fra %v)", f.Decoded, tc.want, eng, fra)
			}
			t.Logf("%s: MP3 plays %v (eng %v, fra %v), %d channels, %d bit/s", name, f.Decoded, eng, fra, f.Channels, f.BitRate)
		})
	}
	for name, tc := range map[string]struct {
		opts server.JobOptions
		want string
	}{
		"track 3":      {server.JobOptions{Track: ptr(3)}, "the video has 2 audio tracks (0: eng, 1: fra); track 3 does not exist"},
		"language deu": {server.JobOptions{Language: "deu"}, `the video has 2 audio tracks (0: eng, 1: fra); none is in language "deu"`},
	} {
		t.Run(name, func(t *testing.T) {
			err := c.Convert(t.Context(), src, filepath.Join(t.TempDir(), "out.mp3"), server.Conversion{Options: tc.opts}, nil)
			if !server.IsPermanent(err) || server.ErrorMessage(err) != tc.want {
				t.Errorf("Convert: %v, want a permanent %q", err, tc.want)
			}
		})
	}
}

func TestConvertTrackFrequency(t *testing.T) {
	// Beyond the durations: the French track is the 880 Hz tone.
	c := newConverter(t, ffmpeg.Config{})
	src := media(t, testmedia.TwoTracks)
	for lang, want := range map[string]float64{"eng": 440, "fra": 880} {
		dst := filepath.Join(t.TempDir(), "out.mp3")
		if err := c.Convert(t.Context(), src, dst, server.Conversion{Options: server.JobOptions{Language: lang}}, nil); err != nil {
			t.Fatal(err)
		}
		if got := toneFrequency(t, dst); math.Abs(got-want) > want/20 {
			t.Errorf("%s: tone at %.0f Hz, want %.0f", lang, got, want)
		}
	}
}

// toneFrequency estimates a pure tone's frequency from its zero crossings, which astats counts.
func toneFrequency(t *testing.T, path string) float64 {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "ffmpeg"), "-nostdin", "-hide_banner", "-i", path,
		"-af", "astats=measure_overall=none:measure_perchannel=Zero_crossings_rate", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("astats: %v: %s", err, out)
	}
	m := regexp.MustCompile(`Zero crossings rate: ([0-9.]+)`).FindAllSubmatch(out, -1)
	if m == nil {
		t.Fatalf("astats said no zero crossings rate: %s", out)
	}
	rate, _ := strconv.ParseFloat(string(m[len(m)-1][1]), 64)
	f := probeMP3(t, path)
	return rate * float64(f.SampleRate) / 2
}

func TestConvertMono(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	src := media(t, testmedia.Stereo)
	for _, mono := range []bool{false, true} {
		f, _ := convertWith(t, c, src, server.JobOptions{Mono: mono})
		want := 2
		if mono {
			want = 1
		}
		if f.Channels != want {
			t.Errorf("mono %v: %d channels, want %d", mono, f.Channels, want)
		}
		if !within(f.Decoded, decodedAudio(t, src, "a:0"), durTol) || !f.VBR() {
			t.Errorf("mono %v: %+v", mono, f)
		}
		t.Logf("mono %v: %d channels, %d bit/s, %v", mono, f.Channels, f.BitRate, f.Decoded)
	}
}

func TestConvertRefusesSplit(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	err := c.Convert(t.Context(), media(t, testmedia.Stereo), filepath.Join(t.TempDir(), "out.mp3"),
		server.Conversion{Options: server.JobOptions{SplitChapters: true}}, nil)
	if !server.IsPermanent(err) {
		t.Errorf("Convert of a split job: %v, want a permanent refusal", err)
	}
}

func TestConvertBrokenTimestamps(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	for _, s := range testmedia.BrokenTimestamps {
		t.Run(s.File(), func(t *testing.T) {
			t.Parallel()
			src := media(t, s)
			real := decodedAudio(t, src, "a:0")
			info, err := c.Probe(t.Context(), src)
			if err != nil {
				t.Fatal(err)
			}
			f, pcts := convertWith(t, c, src, server.JobOptions{})
			if !within(f.Decoded, real, durTol) {
				t.Errorf("MP3 plays %v, want the audio's %v", f.Decoded, real)
			}
			if !within(f.Duration, real, 2*durTol) {
				t.Errorf("MP3 lasts %v by ffprobe, want the audio's %v", f.Duration, real)
			}
			t.Logf("%s: container says %v (audio stream %v), decoded audio %v; MP3 plays %v (ffprobe %v), %d bit/s VBR %v; progress %v",
				s.File(), info.Duration, info.AudioDuration, real, f.Decoded, f.Duration, f.BitRate, f.VBR(), pcts)
			// Trimming works on the audio's own timeline.
			g, _ := convertWith(t, c, src, server.JobOptions{Start: time.Second, End: 2500 * time.Millisecond})
			if !within(g.Decoded, 1500*time.Millisecond, durTol) {
				t.Errorf("trimmed 1-2.5 s: MP3 plays %v", g.Decoded)
			}
		})
	}
}

// loudnessOf measures the integrated loudness (LUFS) and true peak (dBTP) of the file at path
// with ffmpeg's ebur128 filter.
func loudnessOf(t *testing.T, path string) (lufs, peak float64) {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "ffmpeg"), "-nostdin", "-hide_banner", "-nostats", "-i", path,
		"-af", "ebur128=peak=true", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ebur128: %v: %s", err, out)
	}
	summary := string(out)
	if i := strings.LastIndex(summary, "Summary:"); i >= 0 {
		summary = summary[i:]
	}
	i := regexp.MustCompile(`I:\s+(-?[0-9.]+|-inf) LUFS`).FindStringSubmatch(summary)
	p := regexp.MustCompile(`Peak:\s+(-?[0-9.]+|-inf) dBFS`).FindStringSubmatch(summary)
	if i == nil || p == nil {
		t.Fatalf("ebur128 summary not found: %s", summary)
	}
	lufs, _ = strconv.ParseFloat(i[1], 64)
	peak, _ = strconv.ParseFloat(p[1], 64)
	return lufs, peak
}

func TestConvertLoudness(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	for _, tc := range []struct {
		s      testmedia.Sample
		target float64
	}{
		{testmedia.Quiet, -16}, {testmedia.Loud, -16}, {testmedia.Quiet, -23}, {testmedia.Loud, -10},
		{testmedia.Noise, -16},
	} {
		t.Run(tc.s.File()+"/"+strconv.FormatFloat(tc.target, 'f', -1, 64), func(t *testing.T) {
			t.Parallel()
			src := media(t, tc.s)
			before, _ := loudnessOf(t, src)
			f, pcts, dst := convertTo(t, c, src, server.JobOptions{Loudness: tc.target})
			lufs, peak := loudnessOf(t, dst)
			if math.Abs(lufs-tc.target) > 1 {
				t.Errorf("MP3 at %.1f LUFS, want %v ±1 (source %.1f)", lufs, tc.target, before)
			}
			if peak > -1+0.3 { // the MP3's own encoding adds a little overshoot
				t.Errorf("MP3's true peak %.1f dBTP, want at most -1", peak)
			}
			if !within(f.Decoded, decodedAudio(t, src, "a:0"), durTol) || !f.VBR() || f.SampleRate != 44100 && f.SampleRate != 48000 {
				t.Errorf("MP3 %+v", f)
			}
			// Both passes count: the measure ends at 49 before the encoding starts at 50.
			if !slices.Contains(pcts, 49) || !slices.Contains(pcts, 50) {
				t.Errorf("progress %v: want the measure's 49 and the encoding's 50", pcts)
			}
			t.Logf("%s target %v: source %.1f LUFS, MP3 %.1f LUFS, true peak %.1f dBTP, %d Hz %d ch, %v, %d bit/s; progress %v",
				tc.s.File(), tc.target, before, lufs, peak, f.SampleRate, f.Channels, f.Decoded, f.BitRate, pcts)
		})
	}
}

func TestConvertLoudnessSilence(t *testing.T) {
	// loudnorm measures silence as -inf: the MP3 is made without normalisation.
	c := newConverter(t, ffmpeg.Config{})
	src := media(t, testmedia.Silent)
	f, _ := convertWith(t, c, src, server.JobOptions{Loudness: -16})
	if !within(f.Decoded, decodedAudio(t, src, "a:0"), durTol) {
		t.Errorf("MP3 plays %v", f.Decoded)
	}
}

func TestConvertOptionsConfined(t *testing.T) {
	// Both loudness passes, a trim and a track choice work under Landlock.
	c := newConverter(t, ffmpeg.Config{Sandbox: newSandbox(t)})
	src := media(t, testmedia.TwoTracks)
	f, pcts, dst := convertTo(t, c, src, server.JobOptions{Track: ptr(0), Start: 500 * time.Millisecond, End: 2500 * time.Millisecond,
		Loudness: -16, Mono: true, Bitrate: 96})
	lufs, _ := loudnessOf(t, dst)
	if !within(f.Decoded, 2*time.Second, durTol) || f.Channels != 1 || math.Abs(lufs+16) > 1 || f.VBR() {
		t.Errorf("confined MP3: %+v at %.1f LUFS", f, lufs)
	}
	t.Logf("confined: %v, %d ch, %d bit/s, %.1f LUFS, progress %v", f.Decoded, f.Channels, f.BitRate, lufs, pcts)
}

func TestConvertTrimFarIn(t *testing.T) {
	// A start past 30 s is reached by seeking: the MP3 still starts where it should.
	c := newConverter(t, ffmpeg.Config{})
	src := media(t, testmedia.ToneChange) // 440 Hz to 35 s, then 880 Hz
	for _, tc := range []struct {
		start, end time.Duration
		freq       float64
	}{
		{33 * time.Second, 34800 * time.Millisecond, 440},
		{35200 * time.Millisecond, 36500 * time.Millisecond, 880},
		{60 * time.Second, 0, 880},
	} {
		f, _, dst := convertTo(t, c, src, server.JobOptions{Start: tc.start, End: tc.end})
		want := tc.end - tc.start
		if tc.end == 0 {
			want = decodedAudio(t, src, "a:0") - tc.start
		}
		if !within(f.Decoded, want, durTol) {
			t.Errorf("%v-%v: MP3 plays %v, want %v", tc.start, tc.end, f.Decoded, want)
		}
		if got := toneFrequency(t, dst); math.Abs(got-tc.freq) > tc.freq/20 {
			t.Errorf("%v-%v: tone at %.0f Hz, want %.0f", tc.start, tc.end, got, tc.freq)
		}
		t.Logf("%v-%v: MP3 plays %v (ffprobe %v), tone %.0f Hz", tc.start, tc.end, f.Decoded, f.Duration, toneFrequency(t, dst))
	}
}

func TestConvertLoudnessPeakBound(t *testing.T) {
	// Pink noise at -16 LUFS peaks at -2.5 dBTP: -9 LUFS would need +7 dB, and the peak
	// would pass 0. The gain stops short, keeping the true peak at -1 dBTP, and the MP3
	// is as loud as that allows.
	c := newConverter(t, ffmpeg.Config{})
	src := media(t, testmedia.Noise)
	before, peakBefore := loudnessOf(t, src)
	_, _, dst := convertTo(t, c, src, server.JobOptions{Loudness: -9})
	lufs, peak := loudnessOf(t, dst)
	if peak > -1 {
		t.Errorf("MP3's true peak %.1f dBTP, want at most -1", peak)
	}
	if lufs < before || lufs > -9 {
		t.Errorf("MP3 at %.1f LUFS, want louder than the source's %.1f and not over -9", lufs, before)
	}
	t.Logf("noise target -9: source %.1f LUFS %.1f dBTP, MP3 %.1f LUFS, true peak %.1f dBTP", before, peakBefore, lufs, peak)
}

// scanLog counts the packet scans a Converter logs.
type scanLog struct {
	slog.Handler
	scans *atomic.Int32
}

func (h scanLog) Enabled(context.Context, slog.Level) bool { return true }
func (h scanLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "scan packets" {
		h.scans.Add(1)
	}
	return nil
}
func (h scanLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h scanLog) WithGroup(string) slog.Handler      { return h }

// TestPacketsScannedOnlyWhenNeeded: a file whose container tells how long its audio lasts
// converts without a scan of its packets; one whose claim is wrong (broken timestamps), or a
// job that trims, is scanned, once.
func TestPacketsScannedOnlyWhenNeeded(t *testing.T) {
	var scans atomic.Int32
	c := newConverter(t, ffmpeg.Config{Logger: slog.New(scanLog{scans: &scans})})
	for _, tc := range []struct {
		src   testmedia.Sample
		opts  server.JobOptions
		scans int32
	}{
		{testmedia.Good[0], server.JobOptions{}, 0},
		{testmedia.BrokenTimestamps[0], server.JobOptions{}, 1},
		{testmedia.Good[0], server.JobOptions{End: time.Second}, 1},
	} {
		scans.Store(0)
		if convertWith(t, c, media(t, tc.src), tc.opts); scans.Load() != tc.scans {
			t.Errorf("%s %+v: %d scans, want %d", tc.src.File(), tc.opts, scans.Load(), tc.scans)
		}
	}
}
