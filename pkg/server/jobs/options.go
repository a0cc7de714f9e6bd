package jobs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

// Bitrates are the constant bitrates an MPEG-1 Layer III stream can have, in kbit/s.
var Bitrates = wire.Bitrates

// Limits of the options (wire's, which checks them).
const (
	MinLoudness, MaxLoudness = wire.MinLoudness, wire.MaxLoudness
	DefaultLoudness          = wire.DefaultLoudness // LUFS, the target of "normalize": true
	MaxQuality               = wire.MaxQuality
)

// ParseOptions checks the options a client gave and returns them as a job's. The checks are
// wire's (Options.Check), which the client runs too: every bad value gives EINVALID with a
// message that names the option and what it may be. Nil gives the defaults.
func ParseOptions(o *wire.Options) (server.JobOptions, error) {
	var out server.JobOptions
	if o == nil {
		return out, nil
	}
	if err := o.Check(); err != nil {
		var oe *wire.OptionError
		if errors.As(err, &oe) {
			return server.JobOptions{}, server.Errorf(server.EINVALID, "%s", oe.Message)
		}
		return server.JobOptions{}, fmt.Errorf("check options: %w", err)
	}
	// Checked: what follows cannot fail.
	if o.Quality != nil {
		q := *o.Quality
		out.Quality = &q
	}
	if o.Bitrate != "" {
		out.Bitrate, _ = wire.ParseBitrate(o.Bitrate)
	}
	out.Start, _ = wire.ParseTime(o.Start)
	out.End, _ = wire.ParseTime(o.End)
	switch {
	case o.Loudness != nil:
		out.Loudness = *o.Loudness
	case o.Normalize:
		out.Loudness = DefaultLoudness
	}
	if o.Track != nil {
		t := *o.Track
		out.Track = &t
	}
	out.Language = strings.ToLower(o.Language)
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
