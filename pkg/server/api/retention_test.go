package api

import (
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/wire"
)

// TestDeleteJob: DELETE /v1/jobs/{id} removes the owner's job and its files (204), and
// answers 404 to anyone else and for a job that is gone.
func TestDeleteJob(t *testing.T) {
	e := newEnv(t)
	ann, bob := e.user("ann@example.com"), e.user("bob@example.com")
	fid, _ := e.downloadable(ann, 100)
	j, err := e.db.Jobs().JobByMP3(t.Context(), fid)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.do("DELETE", "/v1/jobs/"+j.ID, bob, nil); r.code != 404 {
		t.Fatalf("bob deletes ann's job: %d %s", r.code, r.body)
	}
	if r := e.do("DELETE", "/v1/jobs/"+j.ID, ann, nil); r.code != 204 {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
	for _, p := range []string{"/v1/jobs/" + j.ID, "/v1/files/" + fid} {
		if r := e.do("GET", p, ann, nil); r.code != 404 {
			t.Fatalf("GET %s after delete: %d", p, r.code)
		}
	}
	if r := e.do("DELETE", "/v1/jobs/"+j.ID, ann, nil); r.code != 404 || r.errCode() != "not_found" {
		t.Fatalf("delete again: %d %s", r.code, r.body)
	}
	if r := e.do("DELETE", "/v1/jobs/../../etc", ann, nil); r.code != 404 {
		t.Fatalf("a path for an id: %d", r.code)
	}
	e.noErrorLogs()
}

// TestExpiredDownloadIsGone: once the janitor expired a job, its MP3 answers 410 with the
// date, and the job shows expires_at and expired.
func TestExpiredDownloadIsGone(t *testing.T) {
	var svc *jobs.Service
	e := newEnv(t, func(c *Config) { svc = c.Service; svc.Retention = jobs.Retention{MP3TTL: time.Hour} })
	ann := e.user("ann@example.com")
	fid, _ := e.downloadable(ann, 100)
	j, _ := e.db.Jobs().JobByMP3(t.Context(), fid)
	var got wire.Job
	if r := e.do("GET", "/v1/jobs/"+j.ID, ann, nil); r.code != 200 || r.json(&got) != nil || got.ExpiresAt == nil || got.Expired {
		t.Fatalf("job before expiry: %d %s", r.code, r.body)
	}
	if !got.ExpiresAt.Equal(got.FinishedAt.Add(time.Hour)) {
		t.Fatalf("expires_at %v, finished_at %v", got.ExpiresAt, got.FinishedAt)
	}
	svc.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if f, err := svc.ApplyRetention(t.Context()); err != nil || f.Expired != 1 {
		t.Fatalf("retention: %+v %v", f, err)
	}
	for _, p := range []string{"/v1/files/" + fid, "/download?fid=" + fid, "/v1/jobs/" + j.ID + "/archive"} {
		r := e.do("GET", p, ann, nil)
		if r.code != 410 || r.errCode() != server.EGONE || !strings.Contains(string(r.body), got.ExpiresAt.Format("2006-01-02")) {
			t.Fatalf("GET %s of an expired MP3: %d %s", p, r.code, r.body)
		}
	}
	if r := e.do("GET", "/v1/jobs/"+j.ID, ann, nil); r.code != 200 || r.json(&got) != nil || !got.Expired {
		t.Fatalf("job after expiry: %d %s", r.code, r.body)
	}
	e.noErrorLogs()
}

// TestQuotaAnswers: over a limit the API answers 413 or 429 naming it, and GET /v1/me shows
// the usage with its limits.
func TestQuotaAnswers(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Service.Quotas = jobs.Quotas{OpenUploads: 1, Bytes: 5000} })
	ann := e.user("ann@example.com")
	if r := e.do("POST", "/v1/uploads", ann, jsonBody(map[string]any{"filename": "a.mp4", "size": 6000})); r.code != 413 || !strings.Contains(string(r.body), "quota") {
		t.Fatalf("an upload over the quota: %d %s", r.code, r.body)
	}
	if r := e.do("POST", "/v1/uploads", ann, jsonBody(map[string]any{"filename": "a.mp4", "size": 3000})); r.code != 201 {
		t.Fatalf("upload: %d %s", r.code, r.body)
	}
	r := e.do("POST", "/v1/uploads", ann, jsonBody(map[string]any{"filename": "b.mp4", "size": 10}))
	if r.code != 429 || r.errCode() != server.ELIMIT || r.hdr.Get("Retry-After") != "" {
		t.Fatalf("a second open upload: %d %s (Retry-After %q)", r.code, r.body, r.hdr.Get("Retry-After"))
	}
	var me wire.Me
	if r := e.do("GET", "/v1/me", ann, nil); r.code != 200 || r.json(&me) != nil || me.Usage == nil {
		t.Fatalf("me: %d %s", r.code, r.body)
	}
	if u := *me.Usage; u.UploadBytes != 3000 || u.OpenUploads != 1 || u.MaxOpenUploads != 1 || u.QuotaBytes != 5000 || u.StoredBytes != 0 {
		t.Fatalf("usage %+v", u)
	}
	e.noErrorLogs()
}

// TestAdminLimits: an administrator reads and sets a user's limits, which then apply; a user
// gets 404 for the same routes; bad bodies are 400.
func TestAdminLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Service.Quotas = jobs.Quotas{OpenUploads: 1} })
	_ = e.user("root@example.com")
	ann := e.user("ann@example.com")
	admin, _, err := e.issuer().IssueRole("root@example.com", server.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/admin/users/ann@example.com/limits"
	for _, m := range []string{"GET", "PUT"} {
		if r := e.do(m, path, ann, jsonBody(map[string]any{"max_open_uploads": 5})); r.code != 404 {
			t.Fatalf("a user's %s of admin limits: %d %s", m, r.code, r.body)
		}
	}
	for _, body := range []string{`{"quota_bytes":-1}`, `{"max_duration":"1h"}`, `{"max_open_uploads":1.5}`, `[]`} {
		if r := e.do("PUT", path, admin, strings.NewReader(body)); r.code != 400 {
			t.Fatalf("PUT %s: %d %s", body, r.code, r.body)
		}
	}
	if r := e.do("PUT", path, admin, strings.NewReader(`{"max_open_uploads":2,"max_duration":5400}`)); r.code != 200 {
		t.Fatalf("PUT limits: %d %s", r.code, r.body)
	}
	var l wire.Limits
	if r := e.do("GET", path, admin, nil); r.code != 200 || r.json(&l) != nil || l.MaxOpenUploads == nil || *l.MaxOpenUploads != 2 ||
		l.MaxDuration == nil || *l.MaxDuration != 5400 || l.QuotaBytes != nil {
		t.Fatalf("GET limits: %d %s", r.code, r.body)
	}
	for i := range 2 {
		if r := e.do("POST", "/v1/uploads", ann, jsonBody(map[string]any{"filename": "a.mp4", "size": 10})); r.code != 201 {
			t.Fatalf("upload %d within ann's own limit: %d %s", i, r.code, r.body)
		}
	}
	if r := e.do("POST", "/v1/uploads", ann, jsonBody(map[string]any{"filename": "a.mp4", "size": 10})); r.code != 429 {
		t.Fatalf("upload over ann's own limit: %d %s", r.code, r.body)
	}
}
