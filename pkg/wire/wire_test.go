package wire_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/wire"
)

// TestShapes pins the JSON of every answer to docs/api.md: names, order, nulls and empty arrays.
func TestShapes(t *testing.T) {
	at := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    any
		want string
	}{
		{wire.User{ID: 1, Email: "a@example.com", CreatedAt: at},
			`{"id":1,"email":"a@example.com","created_at":"2026-11-27T15:00:00Z"}`},
		{wire.Credentials{Email: "a@example.com", Password: "pw"}, `{"email":"a@example.com","password":"pw"}`},
		{wire.Token{Token: "eyJ", ExpiresAt: at}, `{"token":"eyJ","expires_at":"2026-11-27T15:00:00Z"}`},
		{wire.Me{Email: "a@example.com", Issuer: "v2m", ExpiresAt: at},
			`{"email":"a@example.com","issuer":"v2m","expires_at":"2026-11-27T15:00:00Z"}`},
		{wire.NewUpload{Filename: "talk.mp4", Size: 5}, `{"filename":"talk.mp4","size":5}`},
		{wire.NewUpload{Filename: "talk.mp4", Size: 5, SHA256: "ab"}, `{"filename":"talk.mp4","size":5,"sha256":"ab"}`},
		{wire.Upload{ID: "65a1", Filename: "talk.mp4", Size: 9, PartSize: 8, Parts: 2, Received: []int{}},
			`{"id":"65a1","filename":"talk.mp4","size":9,"part_size":8,"parts":2,"received":[]}`},
		{wire.Job{ID: "65a1", State: wire.JobQueued, Filename: "talk.mp4", Size: 9, CreatedAt: at, UpdatedAt: at},
			`{"id":"65a1","state":"queued","progress":0,"error":"","filename":"talk.mp4","size":9,"mp3_fid":"",` +
				`"created_at":"2026-11-27T15:00:00Z","updated_at":"2026-11-27T15:00:00Z","finished_at":null}`},
		{wire.Job{ID: "65a1", State: wire.JobQueued, Filename: "talk.mp4", Size: 9, CreatedAt: at, UpdatedAt: at,
			Options: &wire.Options{Bitrate: "192k", Mono: true}},
			`{"id":"65a1","state":"queued","progress":0,"error":"","filename":"talk.mp4","size":9,"mp3_fid":"",` +
				`"options":{"bitrate":"192k","mono":true},` +
				`"created_at":"2026-11-27T15:00:00Z","updated_at":"2026-11-27T15:00:00Z","finished_at":null}`},
		{wire.NewUpload{Filename: "talk.mp4", Size: 5, Options: &wire.Options{}}, `{"filename":"talk.mp4","size":5,"options":{}}`},
		{wire.JobList{Jobs: []wire.Job{}}, `{"jobs":[]}`},
		{wire.ErrorBody{Error: wire.Error{Code: "not_found", Message: "job not found"}},
			`{"error":{"code":"not_found","message":"job not found"}}`},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%T:\n got %s\nwant %s", tc.v, b, tc.want)
		}
	}
}

func TestPartLenAndFinal(t *testing.T) {
	u := wire.Upload{Size: 2500, PartSize: 1000, Parts: 3}
	for n, want := range map[int]int64{-1: -1, 0: 1000, 1: 1000, 2: 500, 3: -1} {
		if got := u.PartLen(n); got != want {
			t.Errorf("PartLen(%d) = %d, want %d", n, got, want)
		}
	}
	for state, final := range map[string]bool{wire.JobQueued: false, wire.JobConverting: false, wire.JobDone: true, wire.JobFailed: true} {
		if got := (&wire.Job{State: state}).Final(); got != final {
			t.Errorf("Final(%s) = %v", state, got)
		}
	}
}
