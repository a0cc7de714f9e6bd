package cli

import (
	"encoding/json"
	"io"
	"time"

	"github.com/v2m/v2m/pkg/client"
)

// The documents --json prints on stdout, one per command (README.md, "The CLI", lists them).
// They are the CLI's own types rather than the SDK's, so that the schema scripts rely on stays
// put when the wire types change. Field order is the order of the keys in the output; the
// documents that were once printed from maps keep their keys in alphabetical order.

// jobJSON is one job, as the API returns it: printed by upload, status and wait, and inside
// jobsJSON, convertJSON and errorJSON.
type jobJSON struct {
	ID         string       `json:"id"`
	State      string       `json:"state"`
	Progress   int          `json:"progress"`
	Error      string       `json:"error"`
	Filename   string       `json:"filename"`
	Size       int64        `json:"size"`                  // the bytes uploaded
	SourceSize int64        `json:"source_size,omitempty"` // the file's own size when only its audio was uploaded
	MP3FID     string       `json:"mp3_fid"`
	Options    *optionsJSON `json:"options,omitempty"` // absent for a job of the default options
	Files      []fileJSON   `json:"files,omitempty"`   // the MP3s of a job split by chapters
	CreatedAt  time.Time    `json:"created_at"`
	UpdatedAt  time.Time    `json:"updated_at"`
	FinishedAt *time.Time   `json:"finished_at"`          // null until the job is done or failed
	ExpiresAt  *time.Time   `json:"expires_at,omitempty"` // when its files are deleted; absent when kept for ever
	Expired    bool         `json:"expired,omitempty"`    // its files were deleted
}

// optionsJSON is a job's MP3 options, as the API shows them (docs/api.md): only those that
// differ from the defaults.
type optionsJSON struct {
	Quality       *int     `json:"quality,omitempty"`
	Bitrate       string   `json:"bitrate,omitempty"`
	Start         string   `json:"start,omitempty"`
	End           string   `json:"end,omitempty"`
	Normalize     bool     `json:"normalize,omitempty"`
	Loudness      *float64 `json:"loudness,omitempty"`
	Track         *int     `json:"track,omitempty"`
	Language      string   `json:"language,omitempty"`
	Mono          bool     `json:"mono,omitempty"`
	Cover         *bool    `json:"cover,omitempty"`
	SplitChapters bool     `json:"split_chapters,omitempty"`
}

func newOptionsJSON(o *client.JobOptions) *optionsJSON {
	if o == nil {
		return nil
	}
	return &optionsJSON{Quality: o.Quality, Bitrate: o.Bitrate, Start: o.Start, End: o.End, Normalize: o.Normalize,
		Loudness: o.Loudness, Track: o.Track, Language: o.Language, Mono: o.Mono, Cover: o.Cover,
		SplitChapters: o.SplitChapters}
}

// fileJSON is one MP3 of a job split by chapters; Start and End are in seconds.
type fileJSON struct {
	FID   string  `json:"fid"`
	Title string  `json:"title"`
	Start float64 `json:"start"`
	End   float64 `json:"end"`
	Size  int64   `json:"size"`
}

func newJobJSON(j *client.Job) *jobJSON {
	if j == nil {
		return nil
	}
	out := &jobJSON{
		ID: j.ID, State: j.State, Progress: j.Progress, Error: j.Error, Filename: j.Filename,
		Size: j.Size, SourceSize: j.SourceSize, MP3FID: j.MP3FID, Options: newOptionsJSON(j.Options),
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, FinishedAt: j.FinishedAt, ExpiresAt: j.ExpiresAt, Expired: j.Expired,
	}
	for _, f := range j.Files {
		out.Files = append(out.Files, fileJSON{FID: f.FID, Title: f.Title, Start: f.Start, End: f.End, Size: f.Size})
	}
	return out
}

// jobsJSON is printed by jobs; Jobs is [] (never null) when there are none.
type jobsJSON struct {
	Jobs []jobJSON `json:"jobs"`
}

// registerJSON is printed by register: the new account, as the API returns it.
type registerJSON struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

// loginJSON is printed by login.
type loginJSON struct {
	Email     string    `json:"email"` // as typed, in lower case
	ExpiresAt time.Time `json:"expires_at"`
	Server    string    `json:"server"`
}

// logoutJSON is printed by logout. ValidUntil is there only when the server did not revoke
// the token and it carries an expiry.
type logoutJSON struct {
	LoggedOut  bool      `json:"logged_out"` // always true: the token is forgotten here
	Revoked    bool      `json:"revoked"`
	Server     string    `json:"server"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
	// NotLoggedIn is there, true, when there was no token to forget.
	NotLoggedIn bool `json:"not_logged_in,omitempty"`
}

// whoamiJSON is printed by whoami: the token's account, as GET /v1/me returns it.
type whoamiJSON struct {
	Email     string        `json:"email"`
	Issuer    string        `json:"issuer"`
	ExpiresAt time.Time     `json:"expires_at"`
	Role      string        `json:"role,omitempty"`
	ReadOnly  bool          `json:"read_only,omitempty"`
	Personal  bool          `json:"personal,omitempty"`
	Usage     *client.Usage `json:"usage,omitempty"`
}

// downloadJSON is printed by download: for a job split by chapters, Path is the directory,
// Size the sum, and Files each MP3.
type downloadJSON struct {
	FID   string         `json:"fid"`
	Path  string         `json:"path"`
	Size  int64          `json:"size"`
	Files []downloadJSON `json:"files,omitempty"`
}

// convertJSON is printed by convert: Path is the MP3, or the directory of a split job's
// MP3s, which Files lists.
type convertJSON struct {
	Job   *jobJSON       `json:"job"`
	Path  string         `json:"path"`
	Files []downloadJSON `json:"files,omitempty"`
}

// resultsJSON is printed by upload and convert given several files: one result per file, in
// the order of the command line.
type resultsJSON struct {
	Results []resultJSON `json:"results"`
}

// resultJSON is what became of one file: its job (null when none was made), where what the job
// made was saved (Path, and Files for a job split by chapters), and the error when it failed.
type resultJSON struct {
	File  string         `json:"file"`
	Job   *jobJSON       `json:"job"`
	Path  string         `json:"path,omitempty"`
	Files []downloadJSON `json:"files,omitempty"`
	Error *errorBody     `json:"error,omitempty"`
}

// errorJSON is printed by every command that fails, with --json. Job is there when the error
// concerns a job: it failed, or waiting for it timed out.
type errorJSON struct {
	Error errorBody `json:"error"`
	Job   *jobJSON  `json:"job,omitempty"`
}

type errorBody struct {
	// Code is the API's error code when the server answered one ("not_found",
	// "unauthorized", ...), else the exit code's name: "error", "usage", "unauthorized",
	// "not_found", "job_failed", "timeout" or "unreachable".
	Code    string `json:"code"`
	Exit    int    `json:"exit"`
	Message string `json:"message"`
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
