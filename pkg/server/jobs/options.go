package jobs

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

// Bitrates are the constant bitrates an MPEG-1 Layer III stream can have, in kbit/s.
var Bitrates = []int{32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320}

// Limits of the options.
const (
	MinLoudness, MaxLoudness = -30.0, -5.0
	DefaultLoudness          = -16.0 // LUFS, the target of "normalize": true
	MaxQuality               = 9
)

// language is an ISO 639-2 code as ffmpeg reports it.
var language = regexp.MustCompile(`^[a-z]{3}$`)

// ParseOptions checks the options a client gave and returns them as a job's. Every bad value
// gives EINVALID with a message that names the option and what it may be. Nil gives the
// defaults.
func ParseOptions(o *wire.Options) (server.JobOptions, error) {
	var out server.JobOptions
	if o == nil {
		return out, nil
	}
	bad := func(format string, args ...any) (server.JobOptions, error) {
		return server.JobOptions{}, server.Errorf(server.EINVALID, "option "+format, args...)
	}
	if o.Quality != nil {
		if *o.Quality < 0 || *o.Quality > MaxQuality {
			return bad(`"quality" must be 0 (best) to %d, not %d`, MaxQuality, *o.Quality)
		}
		q := *o.Quality
		out.Quality = &q
	}
	if o.Bitrate != "" {
		if o.Quality != nil {
			return bad(`"bitrate" and "quality" cannot be combined: bitrate is constant, quality variable`)
		}
		k, ok := parseBitrate(o.Bitrate)
		if !ok {
			return bad(`"bitrate" must be one of %s, not %q`, bitrateList(), o.Bitrate)
		}
		out.Bitrate = k
	}
	var err error
	if out.Start, err = parseTime("start", o.Start); err != nil {
		return server.JobOptions{}, err
	}
	if out.End, err = parseTime("end", o.End); err != nil {
		return server.JobOptions{}, err
	}
	if o.End != "" && out.End <= out.Start {
		return bad(`"end" (%v) must come after "start" (%v)`, out.End, out.Start)
	}
	switch {
	case o.Loudness != nil:
		l := *o.Loudness
		if math.IsNaN(l) || l < MinLoudness || l > MaxLoudness {
			return bad(`"loudness" must be %v to %v LUFS, not %v`, MinLoudness, MaxLoudness, l)
		}
		out.Loudness = l
	case o.Normalize:
		out.Loudness = DefaultLoudness
	}
	if o.Track != nil {
		if *o.Track < 0 || *o.Track > 99 {
			return bad(`"track" must be 0 to 99 (the audio tracks counted from 0), not %d`, *o.Track)
		}
		if o.Language != "" {
			return bad(`"track" and "language" cannot be combined: choose the track one way`)
		}
		t := *o.Track
		out.Track = &t
	}
	if o.Language != "" {
		l := strings.ToLower(o.Language)
		if !language.MatchString(l) {
			return bad(`"language" must be a three-letter ISO 639-2 code such as "eng", not %q`, o.Language)
		}
		out.Language = l
	}
	out.Mono = o.Mono
	out.NoCover = o.Cover != nil && !*o.Cover
	out.SplitChapters = o.SplitChapters
	return out, nil
}

// WireOptions returns a job's options as the API shows them; nil for the defaults.
func WireOptions(o server.JobOptions) *wire.Options {
	if o == (server.JobOptions{}) {
		return nil
	}
	w := &wire.Options{Quality: o.Quality, Track: o.Track, Language: o.Language, Mono: o.Mono,
		SplitChapters: o.SplitChapters}
	if o.Bitrate > 0 {
		w.Bitrate = strconv.Itoa(o.Bitrate) + "k"
	}
	if o.Start > 0 {
		w.Start = o.Start.String()
	}
	if o.End > 0 {
		w.End = o.End.String()
	}
	if o.Loudness != 0 {
		l := o.Loudness
		w.Loudness = &l
		w.Normalize = true
	}
	if o.NoCover {
		no := false
		w.Cover = &no
	}
	return w
}

// parseBitrate reads "192k" (or "192"); only the rates in Bitrates are valid.
func parseBitrate(s string) (int, bool) {
	k, err := strconv.Atoi(strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "k"))
	if err != nil {
		return 0, false
	}
	for _, b := range Bitrates {
		if b == k {
			return k, true
		}
	}
	return 0, false
}

func bitrateList() string {
	var parts []string
	for _, b := range Bitrates {
		parts = append(parts, strconv.Itoa(b)+"k")
	}
	return strings.Join(parts, ", ")
}

// maxTime bounds start and end: nothing v2m converts lasts a day.
const maxTime = 24 * time.Hour

// parseTime reads a point in the audio: a Go duration ("90s", "1m30.5s") or a clock
// ("01:30", "00:01:30.500"). "" is zero.
func parseTime(name, s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		d, err = parseClock(s)
	}
	if err != nil || d < 0 || d > maxTime {
		return 0, server.Errorf(server.EINVALID, `option %q must be a time within the audio such as "90s", "1m30s" or "00:01:30.500", not %q`, name, s)
	}
	return d, nil
}

// parseClock reads [hh:]mm:ss[.fff].
func parseClock(s string) (time.Duration, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, fmt.Errorf("not a clock")
	}
	var d time.Duration
	for i, p := range parts {
		last := i == len(parts)-1
		if last {
			f, err := strconv.ParseFloat(p, 64)
			if err != nil || f < 0 || f >= 60 || strings.ContainsAny(p, "eE+-") {
				return 0, fmt.Errorf("bad seconds")
			}
			d += time.Duration(f * float64(time.Second))
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || (i > 0 && n >= 60) {
			return 0, fmt.Errorf("bad field")
		}
		unit := time.Minute
		if len(parts) == 3 && i == 0 {
			unit = time.Hour
		}
		d += time.Duration(n) * unit
	}
	return d, nil
}
