package mongo

import (
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// optionsDoc is how the "options" field of an upload or job document keeps a
// server.JobOptions: one field per option that differs from the default, durations in
// nanoseconds. Documents of the defaults, and those written before options existed, have no
// "options" field.
type optionsDoc struct {
	Quality       *int    `bson:"quality,omitempty"`
	Bitrate       int     `bson:"bitrate,omitempty"`
	StartNS       int64   `bson:"start_ns,omitempty"`
	EndNS         int64   `bson:"end_ns,omitempty"`
	Loudness      float64 `bson:"loudness,omitempty"`
	Track         *int    `bson:"track,omitempty"`
	Language      string  `bson:"language,omitempty"`
	Mono          bool    `bson:"mono,omitempty"`
	NoCover       bool    `bson:"no_cover,omitempty"`
	SplitChapters bool    `bson:"split_chapters,omitempty"`
}

// toOptionsDoc returns o as stored; nil for the defaults.
func toOptionsDoc(o server.JobOptions) *optionsDoc {
	if o == (server.JobOptions{}) {
		return nil
	}
	return &optionsDoc{Quality: o.Quality, Bitrate: o.Bitrate, StartNS: int64(o.Start), EndNS: int64(o.End),
		Loudness: o.Loudness, Track: o.Track, Language: o.Language, Mono: o.Mono, NoCover: o.NoCover,
		SplitChapters: o.SplitChapters}
}

// jobOptions returns the stored options; nil (no field) is the defaults.
func (d *optionsDoc) jobOptions() server.JobOptions {
	if d == nil {
		return server.JobOptions{}
	}
	return server.JobOptions{Quality: d.Quality, Bitrate: d.Bitrate, Start: time.Duration(d.StartNS),
		End: time.Duration(d.EndNS), Loudness: d.Loudness, Track: d.Track, Language: d.Language, Mono: d.Mono,
		NoCover: d.NoCover, SplitChapters: d.SplitChapters}
}
