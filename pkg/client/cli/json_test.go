package cli

import (
	"bytes"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/client"
)

// TestJSONBytesUnchanged: each typed --json document encodes to the same bytes as what the
// command printed before it had a type (the SDK's structs, or maps, whose keys encoding/json
// sorts), so scripts that read them see no change.
func TestJSONBytesUnchanged(t *testing.T) {
	created := time.Date(2026, 11, 30, 10, 0, 0, 123456789, time.UTC)
	finished := created.Add(90 * time.Second)
	zone := time.FixedZone("CET", 3600)
	done := &client.Job{
		ID: "6740c0ffee0000000000abcd", State: client.JobDone, Progress: 100, Filename: "talk.mp4",
		Size: 12345, MP3FID: "6740c0ffee0000000000beef", CreatedAt: created, UpdatedAt: finished, FinishedAt: &finished,
	}
	queued := &client.Job{ID: "6740c0ffee0000000000abce", State: client.JobQueued, Filename: `C:\a "b".mp4`, CreatedAt: created.In(zone), UpdatedAt: created}
	q, track, lufs, no := 0, 1, -23.5, false
	withOptions := &client.Job{ID: "y", State: client.JobQueued, Filename: "a.mp4", CreatedAt: created, UpdatedAt: created,
		Options: &client.JobOptions{Quality: &q, Start: "1m30s", End: "2m", Normalize: true, Loudness: &lufs, Track: &track,
			Mono: true, Cover: &no, SplitChapters: true}}
	failed := &client.Job{ID: "x", State: client.JobFailed, Error: "no audio stream <&>", CreatedAt: created, UpdatedAt: created, FinishedAt: &finished}
	for _, tc := range []struct {
		name     string
		got, old any
	}{
		{"job done", newJobJSON(done), done},
		{"job queued", newJobJSON(queued), queued},
		// A job with options shows them as the API does, where the API has them.
		{"job with options", newJobJSON(withOptions), withOptions},
		{"jobs", jobsJSON{Jobs: []jobJSON{*newJobJSON(done), *newJobJSON(failed)}}, map[string]any{"jobs": []client.Job{*done, *failed}}},
		{"jobs empty", jobsJSON{Jobs: []jobJSON{}}, map[string]any{"jobs": []client.Job{}}},
		{"register", registerJSON{ID: 7, Email: "a@example.com", CreatedAt: created}, &client.User{ID: 7, Email: "a@example.com", CreatedAt: created}},
		{"whoami", whoamiJSON{Email: "a@example.com", Issuer: "v2m", ExpiresAt: created.In(zone)},
			&client.Me{Email: "a@example.com", Issuer: "v2m", ExpiresAt: created.In(zone)}},
		{"login", loginJSON{Email: "a@example.com", ExpiresAt: created, Server: "http://127.0.0.1:8080"},
			map[string]any{"email": "a@example.com", "server": "http://127.0.0.1:8080", "expires_at": created}},
		{"logout revoked", logoutJSON{LoggedOut: true, Revoked: true, Server: "https://v2m.example.com"},
			map[string]any{"server": "https://v2m.example.com", "logged_out": true, "revoked": true}},
		{"logout not revoked", logoutJSON{LoggedOut: true, Server: "https://v2m.example.com", ValidUntil: finished.Truncate(time.Second)},
			map[string]any{"server": "https://v2m.example.com", "logged_out": true, "revoked": false, "valid_until": finished.Truncate(time.Second)}},
		{"download", downloadJSON{FID: "f", Path: "talk.mp3", Size: 4500}, map[string]any{"fid": "f", "path": "talk.mp3", "size": int64(4500)}},
		{"convert", convertJSON{Job: newJobJSON(done), Path: "talk.mp3"}, map[string]any{"job": done, "path": "talk.mp3"}},
		{"error", errorJSON{Error: errorBody{Code: "not_found", Exit: 4, Message: "get job x: job not found (not_found)"}},
			map[string]any{"error": map[string]any{"code": "not_found", "message": "get job x: job not found (not_found)", "exit": 4}}},
		{"error with job", errorJSON{Error: errorBody{Code: "job_failed", Exit: 5, Message: "job x failed"}, Job: newJobJSON(failed)},
			map[string]any{"error": map[string]any{"code": "job_failed", "message": "job x failed", "exit": 5}, "job": failed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got, old bytes.Buffer
			if err := printJSON(&got, tc.got); err != nil {
				t.Fatal(err)
			}
			if err := printJSON(&old, tc.old); err != nil {
				t.Fatal(err)
			}
			if got.String() != old.String() {
				t.Fatalf("typed:\n%s\nbefore:\n%s", got.String(), old.String())
			}
		})
	}
}
