package api

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/server/token"
	"github.com/v2m/v2m/pkg/wire"
)

func withAdmin(c *Config) {
	c.Admin = &jobs.Admin{Jobs: c.Service.Jobs, Letters: c.Service.Queue.(server.DeadLetters), Logger: c.Logger}
}

// admin registers email and returns a token of the administrator role for it, signed with
// the server's key as v2md does after a grant.
func (e *env) admin(email string) string {
	e.t.Helper()
	e.user(email)
	tok, _, err := (&token.Issuer{Key: e.key, Issuer: "v2m"}).IssueRole(email, server.RoleAdmin)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// failedJob stores a failed job of owner's whose message is a dead letter with reason.
func (e *env) failedJob(owner, reason string) *server.Job {
	e.t.Helper()
	ctx := context.Background()
	j := e.queuedJob(owner)
	body, _ := json.Marshal(server.VideoMessage{JobID: j.ID, VideoFID: j.ID, Username: owner})
	e.deadLetter(server.TopicVideo, body, reason)
	j, err := e.db.Jobs().FailJob(ctx, j.ID, reason)
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

// queuedJob stores a queued job of owner's, created after every job stored before.
func (e *env) queuedJob(owner string) *server.Job {
	e.t.Helper()
	ctx := context.Background()
	before, err := e.db.Jobs().FindJobs(ctx, server.JobFilter{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond).Add(time.Duration(len(before)) * 10 * time.Millisecond)
	j := &server.Job{ID: server.NewID(), Owner: owner, State: server.JobQueued, Filename: "talk.mp4", Size: 10,
		MP3FID: server.NewID(), CreatedAt: at, UpdatedAt: at}
	j.VideoFID = j.ID
	if err := e.db.Jobs().CreateJob(ctx, j); err != nil {
		e.t.Fatal(err)
	}
	return j
}

// deadLetter publishes body on topic and has it dead-lettered with reason.
func (e *env) deadLetter(topic string, body []byte, reason string) {
	e.t.Helper()
	_, before, err := e.q.Depth(context.Background(), topic)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.q.Publish(context.Background(), topic, body); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- e.q.Consume(ctx, topic, 1, func(context.Context, server.Delivery) error {
			return server.Permanent(errors.New(reason))
		})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, dead, err := e.q.Depth(context.Background(), topic)
		if err != nil {
			e.t.Fatal(err)
		}
		if dead > before {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatal("the message was not dead-lettered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestAdminRoutesHiddenFromUsers(t *testing.T) {
	e := newEnv(t, withAdmin)
	tok := e.user("ann@example.com")
	e.failedJob("ann@example.com", "no audio")
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v1/admin/jobs", ""},
		{"GET", "/v1/admin/jobs?state=failed", ""},
		{"GET", "/v1/admin/dead-letters", ""},
		{"POST", "/v1/admin/dead-letters/replay", `{"all":true}`},
		{"DELETE", "/v1/admin/dead-letters", ""},
		{"DELETE", "/v1/admin/dead-letters?topic=video", `{"all":true}`},
	} {
		res := e.do(r.method, r.path, tok, strings.NewReader(r.body))
		if res.code != 404 || res.errCode() != server.ENOTFOUND {
			t.Errorf("%s %s as a user = %d %s, want 404 not_found", r.method, r.path, res.code, res.body)
		}
		if res := e.do(r.method, r.path, "", strings.NewReader(r.body)); res.code != 401 {
			t.Errorf("%s %s without a token = %d, want 401", r.method, r.path, res.code)
		}
	}
	// Nothing was replayed or purged.
	if live, dead, _ := e.q.Depth(context.Background(), server.TopicVideo); live != 0 || dead != 1 {
		t.Errorf("after the users' tries: %d live, %d dead video messages; want 0 and 1", live, dead)
	}
	e.noErrorLogs()
}

func TestAdminListsEveryonesJobs(t *testing.T) {
	e := newEnv(t, withAdmin)
	adm := e.admin("root@example.com")
	annFailed := e.failedJob("ann@example.com", "no audio")
	bobFailed := e.failedJob("Bob@example.com", "not a video")
	queued := e.queuedJob("carol@example.com").ID

	list := func(query string) []wire.AdminJob {
		t.Helper()
		r := e.do("GET", "/v1/admin/jobs"+query, adm, nil)
		var l wire.AdminJobList
		if r.code != 200 || r.json(&l) != nil {
			t.Fatalf("GET /v1/admin/jobs%s = %d %s", query, r.code, r.body)
		}
		return l.Jobs
	}
	idsOf := func(js []wire.AdminJob) []string {
		var out []string
		for _, j := range js {
			out = append(out, j.ID)
		}
		return out
	}
	if got := idsOf(list("")); strings.Join(got, ",") != strings.Join([]string{queued, bobFailed.ID, annFailed.ID}, ",") {
		t.Errorf("all jobs = %v, want carol's, bob's, ann's", got)
	}
	failed := list("?state=failed")
	if len(failed) != 2 || failed[0].ID != bobFailed.ID || failed[0].Owner != "Bob@example.com" || failed[0].Error != "not a video" ||
		failed[0].State != "failed" || failed[1].ID != annFailed.ID {
		t.Errorf("failed jobs = %+v", failed)
	}
	if got := idsOf(list("?state=failed&owner=bob@EXAMPLE.com")); len(got) != 1 || got[0] != bobFailed.ID {
		t.Errorf("bob's failed jobs = %v, want %s", got, bobFailed.ID)
	}
	if got := list("?limit=1"); len(got) != 1 {
		t.Errorf("limit 1 gave %d jobs", len(got))
	}
	if got := list("?since=1h&owner=ann@example.com"); len(got) != 1 {
		t.Errorf("ann's jobs of the last hour = %d, want 1", len(got))
	}
	if got := list("?since=2999-01-01T00:00:00Z"); len(got) != 0 {
		t.Errorf("jobs created after 2999 = %d, want none", len(got))
	}
	for _, q := range []string{"?state=lost", "?limit=0", "?limit=-1", "?limit=1001", "?limit=ten", "?since=yesterday",
		"?owner=a%20b", "?owner=" + strings.Repeat("a", 400)} {
		if r := e.do("GET", "/v1/admin/jobs"+q, adm, nil); r.code != 400 || r.errCode() != server.EINVALID {
			t.Errorf("GET /v1/admin/jobs%s = %d %s, want 400 invalid", q, r.code, r.body)
		}
	}
	e.noErrorLogs()
}

func TestAdminDeadLettersReplayAndPurge(t *testing.T) {
	e := newEnv(t, withAdmin)
	adm := e.admin("root@example.com")
	j := e.failedJob("ann@example.com", "the uploaded video is missing")
	e.deadLetter(server.TopicMP3, []byte(`{"job_id":"`+j.ID+`","state":"failed","username":"ann@example.com"}`), "smtp down")
	done := e.failedJob("bob@example.com", "no audio")

	letters := func(query string) []wire.DeadLetter {
		t.Helper()
		r := e.do("GET", "/v1/admin/dead-letters"+query, adm, nil)
		var l wire.DeadLetterList
		if r.code != 200 || r.json(&l) != nil {
			t.Fatalf("GET /v1/admin/dead-letters%s = %d %s", query, r.code, r.body)
		}
		return l.Letters
	}
	all := letters("")
	if len(all) != 3 {
		t.Fatalf("letters = %+v, want 3", all)
	}
	v := letters("?topic=video")
	if len(v) != 2 || v[1].JobID != done.ID || v[0].JobID != j.ID || v[0].Owner != "ann@example.com" || v[0].Reason != "the uploaded video is missing" ||
		v[0].Attempts != 1 || v[0].JobState != "failed" || v[0].JobError != "the uploaded video is missing" || v[0].DeadAt.IsZero() {
		t.Fatalf("video letters = %+v", v)
	}
	m := letters("?topic=mp3")
	if len(m) != 1 || m[0].Reason != "smtp down" || m[0].Topic != "mp3" {
		t.Fatalf("mp3 letters = %+v", m)
	}
	for _, bad := range []struct{ method, path, body string }{
		{"GET", "/v1/admin/dead-letters?topic=audio", ""},
		{"POST", "/v1/admin/dead-letters/replay", `{}`},
		{"POST", "/v1/admin/dead-letters/replay", `{"ids":["1"],"all":true}`},
		{"POST", "/v1/admin/dead-letters/replay", `{"ids":"1"}`},
		{"POST", "/v1/admin/dead-letters/replay", `[`},
		{"POST", "/v1/admin/dead-letters/replay?topic=x", `{"all":true}`},
		{"DELETE", "/v1/admin/dead-letters?topic=x", ""},
		{"DELETE", "/v1/admin/dead-letters", `{"ids":[]}`},
	} {
		if r := e.do(bad.method, bad.path, adm, strings.NewReader(bad.body)); r.code != 400 {
			t.Errorf("%s %s %s = %d %s, want 400", bad.method, bad.path, bad.body, r.code, r.body)
		}
	}
	// An unknown id: 404, and nothing else is replayed.
	r := e.do("POST", "/v1/admin/dead-letters/replay", adm, jsonBody(wire.LetterIDs{IDs: []string{v[0].ID, "999999"}}))
	if r.code != 404 || !strings.Contains(string(r.body), "999999") {
		t.Fatalf("replay with an unknown id = %d %s, want 404 naming it", r.code, r.body)
	}
	if got, _ := e.db.Jobs().Job(context.Background(), j.ID); got.State != server.JobFailed {
		t.Fatalf("job is %s after a refused replay, want failed", got.State)
	}

	r = e.do("POST", "/v1/admin/dead-letters/replay", adm, jsonBody(wire.LetterIDs{IDs: []string{v[0].ID}}))
	var res wire.ReplayResult
	if r.code != 200 || r.json(&res) != nil || len(res.Replayed) != 1 || res.Replayed[0] != v[0].ID || len(res.Failed) != 0 {
		t.Fatalf("replay = %d %s", r.code, r.body)
	}
	got, err := e.db.Jobs().Job(context.Background(), j.ID)
	if err != nil || got.State != server.JobQueued || got.Error != "" || got.Attempts != 0 || got.Progress != 0 || !got.FinishedAt.IsZero() {
		t.Fatalf("replayed job = %+v, %v; want queued afresh", got, err)
	}
	if live, dead, _ := e.q.Depth(context.Background(), server.TopicVideo); live != 1 || dead != 1 {
		t.Errorf("video messages after the replay: %d live, %d dead; want 1 and bob's 1", live, dead)
	}
	if r := e.do("POST", "/v1/admin/dead-letters/replay", adm, jsonBody(wire.LetterIDs{IDs: []string{v[0].ID}})); r.code != 404 {
		t.Errorf("second replay = %d %s, want 404", r.code, r.body)
	}

	// A letter whose job is not failed any more cannot be replayed: it is reported, and stays.
	if _, err := e.db.Jobs().RetryJob(context.Background(), done.ID); err != nil {
		t.Fatal(err)
	}
	e.finish(done.ID, []byte("mp3"))
	r = e.do("POST", "/v1/admin/dead-letters/replay?topic=video", adm, jsonBody(wire.LetterIDs{All: true}))
	res = wire.ReplayResult{}
	if r.code != 200 || r.json(&res) != nil || len(res.Replayed) != 0 || len(res.Failed) != 1 || !strings.Contains(res.Failed[0].Error, "done") {
		t.Fatalf("replay of a done job's letter = %d %s, want it reported as failed", r.code, r.body)
	}

	// Purge some by id, then the rest.
	r = e.do("DELETE", "/v1/admin/dead-letters", adm, jsonBody(wire.LetterIDs{IDs: []string{m[0].ID}}))
	var pr wire.PurgeResult
	if r.code != 200 || r.json(&pr) != nil || pr.Purged != 1 {
		t.Fatalf("purge by id = %d %s", r.code, r.body)
	}
	if r := e.do("DELETE", "/v1/admin/dead-letters", adm, jsonBody(wire.LetterIDs{IDs: []string{m[0].ID}})); r.code != 404 {
		t.Errorf("purge of a purged id = %d %s, want 404", r.code, r.body)
	}
	r = e.do("DELETE", "/v1/admin/dead-letters?topic=video", adm, nil)
	if pr = (wire.PurgeResult{}); r.code != 200 || r.json(&pr) != nil || pr.Purged != 1 {
		t.Fatalf("purge of the video topic = %d %s, want 1 purged", r.code, r.body)
	}
	if l := letters(""); len(l) != 0 {
		t.Errorf("letters after the purges = %+v", l)
	}
	e.noErrorLogs()
}
