package jobs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/wire"
)

func ptr[T any](v T) *T { return &v }

func TestParseOptions(t *testing.T) {
	good := []struct {
		in   wire.Options
		want server.JobOptions
	}{
		{wire.Options{}, server.JobOptions{}},
		{wire.Options{Quality: ptr(0)}, server.JobOptions{Quality: ptr(0)}},
		{wire.Options{Bitrate: "192k"}, server.JobOptions{Bitrate: 192}},
		{wire.Options{Bitrate: "320"}, server.JobOptions{Bitrate: 320}},
		{wire.Options{Start: "90s", End: "00:02:00.500"}, server.JobOptions{Start: 90 * time.Second, End: 120500 * time.Millisecond}},
		{wire.Options{Start: "01:30"}, server.JobOptions{Start: 90 * time.Second}},
		{wire.Options{Normalize: true}, server.JobOptions{Loudness: -16}},
		{wire.Options{Loudness: ptr(-23.0)}, server.JobOptions{Loudness: -23}},
		{wire.Options{Track: ptr(1)}, server.JobOptions{Track: ptr(1)}},
		{wire.Options{Language: "ENG"}, server.JobOptions{Language: "eng"}},
		{wire.Options{Mono: true, Cover: ptr(false)}, server.JobOptions{Mono: true, NoCover: true}},
		{wire.Options{Cover: ptr(true)}, server.JobOptions{}},
	}
	for _, tc := range good {
		got, err := jobs.ParseOptions(&tc.in)
		if err != nil {
			t.Errorf("ParseOptions(%+v): %v", tc.in, err)
			continue
		}
		if got.VBRQuality() != tc.want.VBRQuality() || got.Bitrate != tc.want.Bitrate || got.Start != tc.want.Start ||
			got.End != tc.want.End || got.Loudness != tc.want.Loudness || got.Language != tc.want.Language ||
			got.Mono != tc.want.Mono || got.NoCover != tc.want.NoCover || got.SplitChapters != tc.want.SplitChapters ||
			(got.Track == nil) != (tc.want.Track == nil) || got.Track != nil && *got.Track != *tc.want.Track {
			t.Errorf("ParseOptions(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
		// What the API shows parses back to the same options.
		back, err := jobs.ParseOptions(jobs.WireOptions(got))
		if err != nil || back.VBRQuality() != got.VBRQuality() || back.Bitrate != got.Bitrate || back.Start != got.Start ||
			back.End != got.End || back.Loudness != got.Loudness || back.NoCover != got.NoCover {
			t.Errorf("round trip of %+v: %+v, %v", got, back, err)
		}
	}
	bad := []struct {
		in   wire.Options
		name string
	}{
		{wire.Options{Quality: ptr(10)}, `"quality" must be 0 (best) to 9`},
		{wire.Options{Quality: ptr(-1)}, `"quality"`},
		{wire.Options{Bitrate: "100k"}, `"bitrate" must be one of 32k`},
		{wire.Options{Bitrate: "fast"}, `"bitrate"`},
		{wire.Options{Bitrate: "192k", Quality: ptr(2)}, `"bitrate" and "quality" cannot be combined`},
		{wire.Options{Start: "soon"}, `"start" must be a time`},
		{wire.Options{Start: "-5s"}, `"start"`},
		{wire.Options{End: "00:61:00"}, `"end"`},
		{wire.Options{Start: "2m", End: "1m"}, `"end" (1m0s) must come after "start" (2m0s)`},
		{wire.Options{Start: "1m", End: "1m"}, `"end"`},
		{wire.Options{Loudness: ptr(-40.0)}, `"loudness" must be -30 to -5 LUFS`},
		{wire.Options{Loudness: ptr(0.0)}, `"loudness"`},
		{wire.Options{Track: ptr(-1)}, `"track"`},
		{wire.Options{Track: ptr(1), Language: "eng"}, `"track" and "language" cannot be combined`},
		{wire.Options{Language: "english"}, `"language" must be a three-letter ISO 639-2 code`},
	}
	for _, tc := range bad {
		_, err := jobs.ParseOptions(&tc.in)
		if !server.IsCode(err, server.EINVALID) || !strings.Contains(server.ErrorMessage(err), tc.name) {
			t.Errorf("ParseOptions(%+v) = %v, want EINVALID naming %s", tc.in, err, tc.name)
		}
	}
	if o, err := jobs.ParseOptions(nil); err != nil || o != (server.JobOptions{}) {
		t.Errorf("ParseOptions(nil) = %+v, %v", o, err)
	}
	if w := jobs.WireOptions(server.JobOptions{}); w != nil {
		t.Errorf("WireOptions of the defaults = %+v, want nil", w)
	}
}
