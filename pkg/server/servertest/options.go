package servertest

import (
	"fmt"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// SampleOptions returns job options that a store must keep exactly: the defaults, pointers set
// to zero values (which differ from nil), durations to the nanosecond, a loudness with a
// fraction, every flag. Each call returns new values.
func SampleOptions() []server.JobOptions {
	zero, one := 0, 1
	nine, three := 9, 3
	return []server.JobOptions{
		{},
		{Quality: &zero},
		{Track: &zero},
		{Quality: &nine, Track: &three, Language: ""},
		{Bitrate: 192, Start: 90 * time.Second, End: 2*time.Minute + 500*time.Millisecond},
		{Start: time.Millisecond + 1, End: 23*time.Hour + 59*time.Minute + 59*time.Second + 999999999},
		{Loudness: -23.5},
		{Loudness: -16, Language: "eng", Mono: true},
		{NoCover: true},
		{SplitChapters: true, Track: &one},
		{Quality: &zero, Start: time.Second, Loudness: -30, Language: "fra", Mono: true, NoCover: true, SplitChapters: true},
	}
}

// FormatOptions shows o with what its pointers point to, for failure messages.
func FormatOptions(o server.JobOptions) string {
	ptr := func(p *int) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("{Quality:%s Bitrate:%d Start:%v End:%v Loudness:%v Track:%s Language:%q Mono:%v NoCover:%v SplitChapters:%v}",
		ptr(o.Quality), o.Bitrate, o.Start, o.End, o.Loudness, ptr(o.Track), o.Language, o.Mono, o.NoCover, o.SplitChapters)
}
