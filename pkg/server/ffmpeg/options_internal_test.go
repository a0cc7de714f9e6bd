package ffmpeg

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

func TestParseLoudness(t *testing.T) {
	measure := `{
	"input_i" : "-27.61",
	"input_tp" : "-4.47",
	"input_lra" : "18.06",
	"input_thresh" : "-39.20",
	"output_i" : "-16.58",
	"output_tp" : "-1.50",
	"output_lra" : "14.78",
	"output_thresh" : "-27.71",
	"normalization_type" : "dynamic",
	"target_offset" : "0.58"
}`
	// Among ffmpeg's other output, with libav's prefix, and a brace in a line before.
	stderr := "Input #0, mov, from 'file:x':\n  Metadata: {odd}\n[Parsed_loudnorm_2 @ 0x55d0] \n" + measure +
		"\nvideo:0kB audio:1504kB subtitle:0kB other streams:0kB global headers:0kB muxing overhead: unknown\n"
	l, err := parseLoudness(stderr)
	if err != nil || l == nil {
		t.Fatalf("parseLoudness: %v, %v", l, err)
	}
	if *l != (loudness{InputI: "-27.61", InputTP: "-4.47", InputLRA: "18.06", InputThresh: "-39.20", Offset: "0.58"}) {
		t.Errorf("parsed %+v", *l)
	}
	// Linear gain is possible: loudnorm applies it.
	lin := loudness{InputI: "-27.61", InputTP: "-14.47", InputLRA: "8.06", InputThresh: "-39.20", Offset: "0.58"}
	f := lin.applyFilter(-16)
	for _, want := range []string{"loudnorm=I=-16:", "TP=-1", "measured_I=-27.61", "measured_TP=-14.47", "measured_LRA=8.06",
		"measured_thresh=-39.20", "offset=0.58", "linear=true"} {
		if !strings.Contains(f, want) {
			t.Errorf("filter %q: want %q", f, want)
		}
	}
	// Where loudnorm would compress and limit instead, one gain of ours: the full 11.61 dB
	// for a wide range, and short of it where the peak would pass -1.5 dBTP.
	wide := lin
	wide.InputLRA = "18.06"
	peaky := lin
	peaky.InputTP = "-4.47"
	for l, want := range map[*loudness]string{&wide: "volume=11.61dB", &peaky: "volume=2.97dB", l: "volume=2.97dB"} {
		if f := l.applyFilter(-16); f != want {
			t.Errorf("%+v: filter %q, want %q", *l, f, want)
		}
	}

	// Silence measures -inf: no normalisation, no error.
	silent := strings.NewReplacer(`"-27.61"`, `"-inf"`, `"-4.47"`, `"-inf"`, `"-39.20"`, `"-70.00"`).Replace(measure)
	if l, err := parseLoudness(silent); l != nil || err != nil {
		t.Errorf("silence: %v, %v; want nil, nil", l, err)
	}
	for name, bad := range map[string]string{
		"none":    "Input #0\nvideo:0kB audio:1kB\n",
		"cut":     measure[:40],
		"garbage": strings.Replace(measure, `"-4.47"`, `"abc"`, 1),
		"nan":     strings.Replace(measure, `"-27.61"`, `"nan"`, 1),
	} {
		if l, err := parseLoudness(bad); err == nil {
			t.Errorf("%s: parsed %+v, want an error", name, l)
		}
	}
}

func TestProgressTwoPasses(t *testing.T) {
	var got []int
	w := &progressWriter{total: 10 * time.Second, report: func(p int) { got = append(got, p) }, last: -1, span: 50}
	w.Write([]byte("progress=continue\nout_time_us=5000000\nout_time_us=20000000\nprogress=end\n"))
	w.lo = 50
	w.Write([]byte("progress=continue\nout_time_us=1000000\nout_time_us=5000000\nout_time_us=10000000\nprogress=end\n"))
	if want := []int{0, 25, 49, 50, 55, 75, 99}; !slices.Equal(got, want) {
		t.Errorf("reported %v, want %v", got, want)
	}
}

func TestPackets(t *testing.T) {
	p := &packets{}
	// pts,dts,duration; a blank line and side data as ffprobe's csv prints them.
	p.Write([]byte("2.000,2.000,0.5\n\n2.500,2.500,0.5,side\n6.000,6.000,0.5\n5.000,5.000,0.5\nN/A,7.000,0.5\nN/A,N/A,N/A\n"))
	if p.Count != 5 || p.First != 2*time.Second || p.End != 7500*time.Millisecond || p.Sum != 2500*time.Millisecond ||
		p.Gaps != 2 || p.Backwards != 1 || !p.Broken() || p.Audio() != 2500*time.Millisecond {
		t.Errorf("packets: %v", p)
	}
	// Matroska rounds AAC's 23.22 ms to 23; its timestamps keep the count.
	m := &packets{}
	m.Write([]byte("0.000,0.000,0.023\n0.023,0.023,0.023\n0.046,0.046,0.023\n0.070,0.070,0.023\n"))
	if m.Sum != 92*time.Millisecond || m.Audio() != 93*time.Millisecond || m.Broken() {
		t.Errorf("matroska: %v, audio %v", m, m.Audio())
	}
	q := &packets{}
	q.Write([]byte("0.0,0.0,\n1.0,1.0,\n"))
	if q.Audio() != time.Second || q.Broken() {
		t.Errorf("without durations: %v, audio %v", q, q.Audio())
	}
}

func TestPickAudio(t *testing.T) {
	eng, fra, und := AudioStream{Language: "eng"}, AudioStream{Language: "fra"}, AudioStream{}
	def := func(s AudioStream) AudioStream { s.Default = true; return s }
	one := 1
	for _, tc := range []struct {
		streams []AudioStream
		opts    server.JobOptions
		want    int
		err     string
	}{
		{[]AudioStream{eng, fra}, server.JobOptions{}, 0, ""},
		{[]AudioStream{eng, def(fra)}, server.JobOptions{}, 1, ""},
		{[]AudioStream{def(eng), def(fra)}, server.JobOptions{}, 0, ""},
		{[]AudioStream{eng, def(fra)}, server.JobOptions{Language: "eng"}, 0, ""},
		{[]AudioStream{eng, def(fra)}, server.JobOptions{Track: &one}, 1, ""},
		{[]AudioStream{eng, {Language: "fre"}}, server.JobOptions{Language: "fra"}, 1, ""}, // 639-2/B
		{[]AudioStream{eng, {Language: "deu"}}, server.JobOptions{Language: "ger"}, 1, ""},
		{[]AudioStream{und}, server.JobOptions{Track: &one}, 0, "the video has 1 audio track (0: und); track 1 does not exist"},
		{[]AudioStream{eng, und}, server.JobOptions{Language: "fra"}, 0, `the video has 2 audio tracks (0: eng, 1: und); none is in language "fra"`},
	} {
		got, err := pickAudio(tc.streams, tc.opts)
		if tc.err != "" {
			if !server.IsPermanent(err) || server.ErrorMessage(err) != tc.err {
				t.Errorf("pickAudio(%v, %+v) = %v, want %q", tc.streams, tc.opts, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("pickAudio(%v, %+v) = %d, %v, want %d", tc.streams, tc.opts, got, err, tc.want)
		}
	}
}
