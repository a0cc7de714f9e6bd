package sqlite

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// optionsRow is how the options column keeps a server.JobOptions: JSON with one key per field
// that differs from the default, durations as Go writes them ("1m30.5s", exact to the
// nanosecond). The defaults are stored as "".
type optionsRow struct {
	Quality       *int    `json:"quality,omitempty"`
	Bitrate       int     `json:"bitrate,omitempty"`
	Start         string  `json:"start,omitempty"`
	End           string  `json:"end,omitempty"`
	Loudness      float64 `json:"loudness,omitempty"`
	Track         *int    `json:"track,omitempty"`
	Language      string  `json:"language,omitempty"`
	Mono          bool    `json:"mono,omitempty"`
	NoCover       bool    `json:"no_cover,omitempty"`
	SplitChapters bool    `json:"split_chapters,omitempty"`
}

func encodeOptions(o server.JobOptions) (string, error) {
	if o == (server.JobOptions{}) {
		return "", nil
	}
	b, err := json.Marshal(optionsRow{Quality: o.Quality, Bitrate: o.Bitrate, Start: duration(o.Start),
		End: duration(o.End), Loudness: o.Loudness, Track: o.Track, Language: o.Language, Mono: o.Mono,
		NoCover: o.NoCover, SplitChapters: o.SplitChapters})
	if err != nil {
		return "", fmt.Errorf("encode options: %w", err)
	}
	return string(b), nil
}

func decodeOptions(s string) (server.JobOptions, error) {
	if s == "" {
		return server.JobOptions{}, nil
	}
	var r optionsRow
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return server.JobOptions{}, fmt.Errorf("decode options: %w", err)
	}
	o := server.JobOptions{Quality: r.Quality, Bitrate: r.Bitrate, Loudness: r.Loudness, Track: r.Track,
		Language: r.Language, Mono: r.Mono, NoCover: r.NoCover, SplitChapters: r.SplitChapters}
	var err error
	if o.Start, err = parseDuration(r.Start); err != nil {
		return server.JobOptions{}, fmt.Errorf("decode options: start: %w", err)
	}
	if o.End, err = parseDuration(r.End); err != nil {
		return server.JobOptions{}, fmt.Errorf("decode options: end: %w", err)
	}
	return o, nil
}

func duration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

// fileRow is how the files column keeps a server.JobFile: JSON, durations as Go writes them.
type fileRow struct {
	Title string `json:"title"`
	Start string `json:"start"`
	End   string `json:"end"`
	Size  int64  `json:"size"`
}

// encodeFiles stores files as a JSON array; none as "".
func encodeFiles(files []server.JobFile) (string, error) {
	if len(files) == 0 {
		return "", nil
	}
	rows := make([]fileRow, len(files))
	for i, f := range files {
		rows[i] = fileRow{Title: f.Title, Start: f.Start.String(), End: f.End.String(), Size: f.Size}
	}
	b, err := json.Marshal(rows)
	if err != nil {
		return "", fmt.Errorf("encode files: %w", err)
	}
	return string(b), nil
}

func decodeFiles(s string) ([]server.JobFile, error) {
	if s == "" {
		return nil, nil
	}
	var rows []fileRow
	if err := json.Unmarshal([]byte(s), &rows); err != nil {
		return nil, fmt.Errorf("decode files: %w", err)
	}
	files := make([]server.JobFile, len(rows))
	for i, r := range rows {
		var err error
		files[i] = server.JobFile{Title: r.Title, Size: r.Size}
		if files[i].Start, err = time.ParseDuration(r.Start); err != nil {
			return nil, fmt.Errorf("decode files: start: %w", err)
		}
		if files[i].End, err = time.ParseDuration(r.End); err != nil {
			return nil, fmt.Errorf("decode files: end: %w", err)
		}
	}
	return files, nil
}
