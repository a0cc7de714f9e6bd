package wire

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Bitrates are the constant bitrates an MPEG-1 Layer III stream can have, in kbit/s: the
// values "bitrate" may take.
var Bitrates = []int{32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320}

// Limits of the options.
const (
	MinLoudness, MaxLoudness = -30.0, -5.0
	DefaultLoudness          = -16.0 // LUFS, the target of "normalize": true
	MaxQuality               = 9
	MaxTrack                 = 99
	MaxTime                  = 24 * time.Hour // start and end: nothing v2m converts lasts a day
)

// OptionError is a bad option. Its message names the option (as its JSON key) and what it
// may be.
type OptionError struct {
	Option  string // the JSON key, e.g. "quality"
	Message string // the whole message: `option "quality" must be 0 (best) to 9, not 10`
}

func (e *OptionError) Error() string { return e.Message }

func badOption(name, format string, args ...any) error {
	return &OptionError{Option: name, Message: "option " + fmt.Sprintf(format, args...)}
}

// language is an ISO 639-2 code as ffmpeg reports it.
var language = regexp.MustCompile(`^[a-z]{3}$`)

// Check reports whether the options are valid, as the server checks them: nil, or an
// *OptionError naming the first bad option. Nil options are valid (the defaults). The client
// checks with it before it uploads anything.
func (o *Options) Check() error {
	if o == nil {
		return nil
	}
	if o.Quality != nil && (*o.Quality < 0 || *o.Quality > MaxQuality) {
		return badOption("quality", `"quality" must be 0 (best) to %d, not %d`, MaxQuality, *o.Quality)
	}
	if o.Bitrate != "" {
		if o.Quality != nil {
			return badOption("bitrate", `"bitrate" and "quality" cannot be combined: bitrate is constant, quality variable`)
		}
		if _, ok := ParseBitrate(o.Bitrate); !ok {
			return badOption("bitrate", `"bitrate" must be one of %s, not %q`, bitrateList(), o.Bitrate)
		}
	}
	start, err := checkTime("start", o.Start)
	if err != nil {
		return err
	}
	end, err := checkTime("end", o.End)
	if err != nil {
		return err
	}
	if strings.TrimSpace(o.End) != "" && end <= start {
		return badOption("end", `"end" (%v) must come after "start" (%v)`, end, start)
	}
	if o.Loudness != nil {
		if l := *o.Loudness; math.IsNaN(l) || l < MinLoudness || l > MaxLoudness {
			return badOption("loudness", `"loudness" must be %v to %v LUFS, not %v`, MinLoudness, MaxLoudness, l)
		}
	}
	if o.Track != nil {
		if *o.Track < 0 || *o.Track > MaxTrack {
			return badOption("track", `"track" must be 0 to %d (the audio tracks counted from 0), not %d`, MaxTrack, *o.Track)
		}
		if o.Language != "" {
			return badOption("track", `"track" and "language" cannot be combined: choose the track one way`)
		}
	}
	if o.Language != "" && !language.MatchString(strings.ToLower(o.Language)) {
		return badOption("language", `"language" must be a three-letter ISO 639-2 code such as "eng", not %q`, o.Language)
	}
	return nil
}

// ParseBitrate reads a bitrate as "bitrate" gives it, "192k" (or "192"), in kbit/s; only
// the rates in Bitrates are valid.
func ParseBitrate(s string) (int, bool) {
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
	parts := make([]string, 0, len(Bitrates))
	for _, b := range Bitrates {
		parts = append(parts, strconv.Itoa(b)+"k")
	}
	return strings.Join(parts, ", ")
}

// ParseTime reads a point in the audio as "start" and "end" give it: a Go duration ("90s",
// "1m30.5s") or a clock ("01:30", "00:01:30.500"), from 0 to MaxTime. "" is zero.
func ParseTime(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, true
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		d, err = parseClock(s)
	}
	if err != nil || d < 0 || d > MaxTime {
		return 0, false
	}
	return d, true
}

func checkTime(name, s string) (time.Duration, error) {
	d, ok := ParseTime(s)
	if !ok {
		return 0, badOption(name, `%q must be a time within the audio such as "90s", "1m30s" or "00:01:30.500", not %q`, name, strings.TrimSpace(s))
	}
	return d, nil
}

// parseClock reads [hh:]mm:ss[.fff].
func parseClock(s string) (time.Duration, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, errors.New("not a clock")
	}
	var d time.Duration
	for i, p := range parts {
		if i == len(parts)-1 {
			f, err := strconv.ParseFloat(p, 64)
			if err != nil || f < 0 || f >= 60 || strings.ContainsAny(p, "eE+-") {
				return 0, errors.New("bad seconds")
			}
			d += time.Duration(f * float64(time.Second))
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || (i > 0 && n >= 60) {
			return 0, errors.New("bad field")
		}
		unit := time.Minute
		if len(parts) == 3 && i == 0 {
			unit = time.Hour
		}
		d += time.Duration(n) * unit
	}
	return d, nil
}
