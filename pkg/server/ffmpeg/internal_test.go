package ffmpeg

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReason(t *testing.T) {
	for _, tc := range []struct {
		stderr string
		paths  []string
		want   string
	}{
		{"", nil, "unknown error"},
		{"/tmp/x/in.mp4: Invalid data found when processing input\n", []string{"/tmp/x/in.mp4"},
			"Invalid data found when processing input"},
		{"[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5556c4da6740] moov atom not found\nfile:/tmp/a: Invalid data found when processing input\n",
			[]string{"file:/tmp/a", "/tmp/a"}, "moov atom not found; Invalid data found when processing input"},
		{"[aac @ 0x1] channel element 0.0 is not allocated\nError while decoding stream #0:1: Invalid data found when processing input\n" +
			"[aac @ 0x1] channel element 0.0 is not allocated\nError while decoding stream #0:1: Invalid data found when processing input\nEmpty output\n",
			nil, "Invalid data found when processing input; no audio could be decoded"},
		{"a\na\na\n", nil, "a"},
		{"cannot open /tmp/q/out.mp3 for writing", []string{"/tmp/q/out.mp3"}, "cannot open the file for writing"},
	} {
		if got := reason(tc.stderr, tc.paths...); got != tc.want {
			t.Errorf("reason(%q) = %q, want %q", tc.stderr, got, tc.want)
		}
	}
	long := reason(strings.Repeat("é", 500))
	if len(long) > maxReason+len("…") || !strings.HasSuffix(long, "…") || !utf8Valid(long) {
		t.Errorf("long reason %q: want it cut, valid UTF-8", long)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestTail(t *testing.T) {
	var tl tail
	for range 1000 {
		tl.Write([]byte("0123456789"))
	}
	tl.Write([]byte("end"))
	if len(tl.Bytes()) != tailSize || !bytes.HasSuffix(tl.Bytes(), []byte("789end")) || !tl.truncated {
		t.Errorf("tail kept %d bytes ending %q", len(tl.Bytes()), tl.Bytes()[len(tl.Bytes())-6:])
	}
	tl.Write(bytes.Repeat([]byte("x"), 3*tailSize))
	if len(tl.Bytes()) != tailSize {
		t.Errorf("tail kept %d bytes after a big write", len(tl.Bytes()))
	}
}

func TestProgressWriter(t *testing.T) {
	var got []int
	w := &progressWriter{total: 10 * time.Second, report: func(p int) { got = append(got, p) }, last: -1}
	out := "frame=0\nout_time_us=N/A\nout_time_ms=-5\nprogress=continue\n" +
		"out_time_us=1000000\nout_time_ms=1000000\nprogress=continue\n" +
		"out_time_us=1050000\n" + // still 10%: no report
		"out_time_us=500000\n" + // going back: no report
		"out_time_ms=5500000\n" +
		"out_time_us=12000000\n" + // past the end: capped
		"progress=end\n"
	// Feed it in awkward pieces, as a pipe may.
	for chunk := range slices.Chunk([]byte(out), 7) {
		if n, err := w.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if want := []int{0, 10, 55, 99}; !slices.Equal(got, want) {
		t.Errorf("reported %v, want %v", got, want)
	}

	// Unknown duration: nothing but the start and the end.
	got = nil
	w = &progressWriter{report: func(p int) { got = append(got, p) }, last: -1}
	w.Write([]byte("out_time_us=5000000\nprogress=continue\nprogress=end\n"))
	if want := []int{0, 99}; !slices.Equal(got, want) {
		t.Errorf("without a duration reported %v, want %v", got, want)
	}

	// A line without end is bounded.
	w = &progressWriter{last: -1}
	w.Write(bytes.Repeat([]byte("x"), 10*maxLine))
	if len(w.line) > maxLine {
		t.Errorf("partial line grew to %d bytes", len(w.line))
	}
}

func TestClock(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"00:00:03.023000000": 3023 * time.Millisecond,
		"01:02:03.5":         time.Hour + 2*time.Minute + 3500*time.Millisecond,
		"00:00:00.000000000": 0,
		"":                   0,
		"3.5":                0,
		"aa:00:01":           0,
		"00:61:00":           0,
	} {
		if got := clock(in); got != want {
			t.Errorf("clock(%q) = %v, want %v", in, got, want)
		}
	}
}
