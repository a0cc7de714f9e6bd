package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/v2m/v2m/pkg/client"
	"github.com/v2m/v2m/pkg/wire"
)

// mp3Flags are the job options that upload and convert take as flags.
type mp3Flags struct {
	quality       int
	bitrate       string
	start, end    string
	normalize     normalizeValue
	track         int
	language      string
	mono          bool
	noCover       bool
	splitChapters bool
}

// addMP3Flags defines the option flags on fs.
func addMP3Flags(fs *pflag.FlagSet) *mp3Flags {
	m := &mp3Flags{}
	fs.IntVar(&m.quality, "quality", 2, fmt.Sprintf("VBR quality `N`, 0 (best) to %d", wire.MaxQuality))
	fs.StringVar(&m.bitrate, "bitrate", "", "constant bitrate `RATE` instead of VBR, e.g. 192k (32k to 320k)")
	fs.StringVar(&m.start, "start", "", "keep the audio from `TIME` on, e.g. 90s, 1m30s or 00:01:30.500")
	fs.StringVar(&m.end, "end", "", "keep the audio up to `TIME`")
	fs.Var(&m.normalize, "normalize", fmt.Sprintf("normalise the loudness (EBU R128) to %v LUFS; --normalize=LUFS for another target (%v to %v)",
		wire.DefaultLoudness, wire.MinLoudness, wire.MaxLoudness))
	fs.Lookup("normalize").NoOptDefVal = "true"
	fs.IntVar(&m.track, "track", 0, "convert audio track `N`, counted from 0")
	fs.StringVar(&m.language, "language", "", "convert the audio track in language `CODE` (ISO 639-2, e.g. eng)")
	fs.BoolVar(&m.mono, "mono", false, "downmix to mono")
	fs.BoolVar(&m.noCover, "no-cover", false, "leave the cover art out")
	fs.BoolVar(&m.splitChapters, "split-chapters", false, "make one MP3 per chapter")
	return m
}

// flagOf names the flag that sets each option, for messages.
var flagOf = map[string]string{
	"quality": "--quality", "bitrate": "--bitrate", "start": "--start", "end": "--end", "normalize": "--normalize",
	"loudness": "--normalize", "track": "--track", "language": "--language",
}

// options returns the job options the flags ask for (nil for none), checked as the server
// checks them: a bad value is a usage error with the server's message.
func (m *mp3Flags) options(fs *pflag.FlagSet) (*client.JobOptions, error) {
	var o client.JobOptions
	if fs.Changed("quality") {
		q := m.quality
		o.Quality = &q
	}
	if fs.Changed("track") {
		t := m.track
		o.Track = &t
	}
	o.Bitrate, o.Start, o.End, o.Language = m.bitrate, m.start, m.end, m.language
	o.Normalize, o.Loudness = m.normalize.on, m.normalize.lufs
	o.Mono, o.SplitChapters = m.mono, m.splitChapters
	if m.noCover {
		no := false
		o.Cover = &no
	}
	if err := o.Check(); err != nil {
		var oe *wire.OptionError
		if errors.As(err, &oe) && flagOf[oe.Option] != "" {
			return nil, usageError("%s: %v", flagOf[oe.Option], err)
		}
		return nil, usageError("%v", err)
	}
	if o == (client.JobOptions{}) {
		return nil, nil
	}
	return &o, nil
}

// normalizeValue is --normalize: a bool flag that may take a loudness, --normalize=-23.
type normalizeValue struct {
	on   bool
	lufs *float64
	text string
}

func (v *normalizeValue) String() string { return v.text }

// Type is "bool" so that the help shows --normalize without a value; NoOptDefVal makes the
// bare flag "true".
func (v *normalizeValue) Type() string { return "bool" }

func (v *normalizeValue) Set(s string) error {
	switch s {
	case "true":
		v.on, v.lufs = true, nil
	case "false":
		v.on, v.lufs = false, nil
	default:
		l, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("takes no value or a loudness in LUFS, such as --normalize=-23, not %q", s)
		}
		v.on, v.lufs = true, &l
	}
	v.text = s
	return nil
}

// optionsText shows a job's options as the flags that ask for them ("--bitrate 192k --mono");
// "" for the defaults.
func optionsText(o *client.JobOptions) string {
	if o == nil {
		return ""
	}
	var parts []string
	add := func(flag string, value ...string) {
		parts = append(parts, strings.Join(append([]string{flag}, value...), " "))
	}
	if o.Quality != nil {
		add("--quality", strconv.Itoa(*o.Quality))
	}
	if o.Bitrate != "" {
		add("--bitrate", o.Bitrate)
	}
	if o.Start != "" {
		add("--start", o.Start)
	}
	if o.End != "" {
		add("--end", o.End)
	}
	switch {
	case o.Loudness != nil:
		add("--normalize=" + strconv.FormatFloat(*o.Loudness, 'f', -1, 64))
	case o.Normalize:
		add("--normalize")
	}
	if o.Track != nil {
		add("--track", strconv.Itoa(*o.Track))
	}
	if o.Language != "" {
		add("--language", o.Language)
	}
	if o.Mono {
		add("--mono")
	}
	if o.Cover != nil && !*o.Cover {
		add("--no-cover")
	}
	if o.SplitChapters {
		add("--split-chapters")
	}
	return strings.Join(parts, " ")
}
