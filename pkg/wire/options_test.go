package wire_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/v2m/v2m/pkg/wire"
)

func ptr[T any](v T) *T { return &v }

// TestOptionsCheck checks what the client checks before it uploads: every bad option gives an
// *OptionError that names it, with the message the server answers (jobs.ParseOptions is tested
// with the same cases).
func TestOptionsCheck(t *testing.T) {
	var nilOpts *wire.Options
	if err := nilOpts.Check(); err != nil {
		t.Errorf("nil options: %v", err)
	}
	good := []wire.Options{
		{}, {Quality: ptr(0)}, {Quality: ptr(9)}, {Bitrate: "192k"}, {Bitrate: "320"}, {Bitrate: " 32K "},
		{Start: "90s", End: "00:02:00.500"}, {Start: "01:30"}, {End: "1h"}, {Normalize: true},
		{Loudness: ptr(-30.0)}, {Loudness: ptr(-5.0)}, {Track: ptr(0)}, {Track: ptr(99)}, {Language: "ENG"},
		{Mono: true, Cover: ptr(false)},
	}
	for _, o := range good {
		if err := o.Check(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	bad := []struct {
		in      wire.Options
		option  string
		message string
	}{
		{wire.Options{Quality: ptr(10)}, "quality", `option "quality" must be 0 (best) to 9, not 10`},
		{wire.Options{Quality: ptr(-1)}, "quality", `"quality"`},
		{wire.Options{Bitrate: "100k"}, "bitrate", `option "bitrate" must be one of 32k, 40k, 48k, 56k, 64k, 80k, 96k, 112k, 128k, 160k, 192k, 224k, 256k, 320k, not "100k"`},
		{wire.Options{Bitrate: "192k", Quality: ptr(2)}, "bitrate", `"bitrate" and "quality" cannot be combined`},
		{wire.Options{Start: "soon"}, "start", `option "start" must be a time within the audio such as "90s", "1m30s" or "00:01:30.500", not "soon"`},
		{wire.Options{Start: "-5s"}, "start", `"start"`},
		{wire.Options{End: "25h"}, "end", `"end" must be a time`},
		{wire.Options{End: "00:61:00"}, "end", `"end"`},
		{wire.Options{Start: "2m", End: "1m"}, "end", `option "end" (1m0s) must come after "start" (2m0s)`},
		{wire.Options{Loudness: ptr(-40.0)}, "loudness", `option "loudness" must be -30 to -5 LUFS, not -40`},
		{wire.Options{Track: ptr(100)}, "track", `"track" must be 0 to 99`},
		{wire.Options{Track: ptr(1), Language: "eng"}, "track", `"track" and "language" cannot be combined`},
		{wire.Options{Language: "english"}, "language", `option "language" must be a three-letter ISO 639-2 code such as "eng", not "english"`},
	}
	for _, tc := range bad {
		err := tc.in.Check()
		var oe *wire.OptionError
		if !errors.As(err, &oe) || oe.Option != tc.option || !strings.Contains(err.Error(), tc.message) {
			t.Errorf("%+v: %v, want an OptionError for %s with %s", tc.in, err, tc.option, tc.message)
		}
	}
}
