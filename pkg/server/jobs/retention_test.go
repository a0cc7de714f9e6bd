package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/server/sqlite"
)

// done completes an upload of data for owner and finishes its job with an MP3 of body.
func done(t *testing.T, s *jobs.Service, db *sqlite.DB, owner string, data []byte, body string) *server.Job {
	t.Helper()
	j, err := s.Complete(t.Context(), owner, upload(t, s, owner, data).ID)
	if err != nil {
		t.Fatal(err)
	}
	finish(t, s, db, j, body, nil)
	j, err = s.Job(t.Context(), owner, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func exists(t *testing.T, s *jobs.Service, bucket, fid string) bool {
	t.Helper()
	b, err := s.Blobs.Open(context.Background(), bucket, fid)
	if server.IsCode(err, server.ENOTFOUND) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	return true
}

// TestDeleteRemovesTheJobAndItsFiles: the owner's delete removes the record, the video and the
// MP3 in any state; someone else gets 404 and nothing changes.
func TestDeleteRemovesTheJobAndItsFiles(t *testing.T) {
	s, db := newService(t)
	ctx := t.Context()
	j := done(t, s, db, "ann@example.com", []byte("abcdefgh"), "mp3!")
	wantCode(t, "bob deletes ann's job", s.Delete(ctx, "bob@example.com", j.ID), server.ENOTFOUND)
	if !exists(t, s, server.BucketVideos, j.VideoFID) || !exists(t, s, server.BucketMP3s, j.MP3FID) {
		t.Fatal("a refused delete removed files")
	}
	if err := s.Delete(ctx, "ann@example.com", j.ID); err != nil {
		t.Fatal(err)
	}
	if exists(t, s, server.BucketVideos, j.VideoFID) || exists(t, s, server.BucketMP3s, j.MP3FID) {
		t.Fatal("files left after the delete")
	}
	_, err := s.Job(ctx, "ann@example.com", j.ID)
	wantCode(t, "job after delete", err, server.ENOTFOUND)
	wantCode(t, "delete again", s.Delete(ctx, "ann@example.com", j.ID), server.ENOTFOUND)
	// A queued job goes too, with its video.
	q, err := s.Complete(ctx, "ann@example.com", upload(t, s, "ann@example.com", []byte("queued")).ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "ann@example.com", q.ID); err != nil {
		t.Fatal(err)
	}
	if exists(t, s, server.BucketVideos, q.VideoFID) {
		t.Fatal("the queued job's video is left")
	}
}

// TestRetention: a pass deletes the videos of done jobs at once (not with KeepVideo), and
// every file of final jobs older than the MP3 time to live; an expired MP3 answers EGONE with
// its date, and the job shows when it expires.
func TestRetention(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(map[bool]string{false: "DeleteVideos", true: "KeepVideo"}[keep], func(t *testing.T) {
			s, db := newService(t)
			ctx := t.Context()
			now := time.Now().UTC()
			s.Now = func() time.Time { return now }
			s.Retention = jobs.Retention{KeepVideo: keep, MP3TTL: time.Hour}
			j := done(t, s, db, "ann@example.com", []byte("abcdefgh"), "mp3!")
			if j.ExpiresAt.IsZero() || !j.ExpiresAt.Equal(j.FinishedAt.Add(time.Hour)) {
				t.Fatalf("ExpiresAt %v, finished %v: want an hour later", j.ExpiresAt, j.FinishedAt)
			}
			failed, err := s.Complete(ctx, "ann@example.com", upload(t, s, "ann@example.com", []byte("bad")).ID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Jobs().FailJob(ctx, failed.ID, "no audio"); err != nil {
				t.Fatal(err)
			}
			f, err := s.ApplyRetention(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{false: 1, true: 0}[keep]; f.Videos != want || f.Expired != 0 {
				t.Fatalf("first pass freed %+v, want %d videos", f, want)
			}
			if exists(t, s, server.BucketVideos, j.VideoFID) != keep || !exists(t, s, server.BucketMP3s, j.MP3FID) {
				t.Fatalf("after the first pass: video kept %v (want %v), MP3 kept %v", !keep, keep, exists(t, s, server.BucketMP3s, j.MP3FID))
			}
			if !exists(t, s, server.BucketVideos, failed.VideoFID) {
				t.Fatal("a failed job's video went before the job expired")
			}
			if d, err := s.OpenFile(ctx, "ann@example.com", j.MP3FID); err != nil {
				t.Fatalf("the MP3 before it expires: %v", err)
			} else {
				d.Close()
			}

			now = now.Add(time.Hour + time.Second)
			f, err = s.ApplyRetention(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if f.Expired != 2 {
				t.Fatalf("second pass freed %+v, want 2 expired jobs", f)
			}
			for _, fid := range []string{j.VideoFID, failed.VideoFID} {
				if exists(t, s, server.BucketVideos, fid) {
					t.Fatalf("video %s left after its job expired", fid)
				}
			}
			if exists(t, s, server.BucketMP3s, j.MP3FID) {
				t.Fatal("MP3 left after its job expired")
			}
			_, err = s.OpenFile(ctx, "ann@example.com", j.MP3FID)
			wantCode(t, "download of an expired MP3", err, server.EGONE)
			if msg := server.ErrorMessage(err); !strings.Contains(msg, j.ExpiresAt.Format("2006-01-02")) {
				t.Errorf("the answer %q does not say when it expired", msg)
			}
			got, err := s.Job(ctx, "ann@example.com", j.ID)
			if err != nil || !got.Expired {
				t.Fatalf("the expired job: %+v, %v", got, err)
			}
			if f, err := s.ApplyRetention(ctx); err != nil || f != (jobs.Freed{}) {
				t.Fatalf("a third pass freed %+v, %v; want nothing", f, err)
			}
		})
	}
}

// TestQuotas: open uploads, active jobs and stored bytes are limited per user, the server's
// defaults replaced by what an administrator set; over a limit the answer names it.
func TestQuotas(t *testing.T) {
	s, db := newService(t)
	ctx := t.Context()
	s.MaxUploadSize = 1 << 20
	s.Quotas = jobs.Quotas{OpenUploads: 2, ActiveJobs: 1, Bytes: 100}
	s.Limits = db.Limits()
	start := func(owner string, size int64) (*server.Upload, error) {
		return s.StartUpload(ctx, owner, jobs.NewUpload{Filename: "a.mp4", Size: size})
	}
	u1, err := start("ann@example.com", 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := start("ann@example.com", 10); err != nil {
		t.Fatal(err)
	}
	_, err = start("ann@example.com", 10)
	wantCode(t, "a third open upload", err, server.ELIMIT)
	if !strings.Contains(server.ErrorMessage(err), "2 uploads open") {
		t.Errorf("message %q does not name the limit", server.ErrorMessage(err))
	}
	if _, err := start("bob@example.com", 10); err != nil {
		t.Fatalf("bob is limited by ann's uploads: %v", err)
	}
	if err := s.Abort(ctx, "ann@example.com", u1.ID); err != nil {
		t.Fatal(err)
	}
	_, err = start("ann@example.com", 91) // 10 open + 91 > 100
	wantCode(t, "an upload over the storage quota", err, server.ETOOLARGE)
	if !strings.Contains(server.ErrorMessage(err), "quota is 100 B") {
		t.Errorf("message %q does not name the quota", server.ErrorMessage(err))
	}
	// One active job at most: a second completion waits for the first to end.
	a := upload(t, s, "ann@example.com", []byte("0123456789"))
	if _, err := s.Complete(ctx, "ann@example.com", a.ID); err != nil {
		t.Fatal(err)
	}
	b, err := start("ann@example.com", 5)
	if err == nil {
		_, err = s.Complete(ctx, "ann@example.com", b.ID)
	}
	wantCode(t, "a second active job", err, server.ELIMIT)
	// An administrator lifts ann's job limit and her storage quota.
	zero, many := int64(0), 5
	if err := db.Limits().SetUserLimits(ctx, "ann@example.com", server.Limits{QuotaBytes: &zero, MaxActiveJobs: &many}); err != nil {
		t.Fatal(err)
	}
	u, err := s.UsageOf(ctx, "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if u.Limits.Bytes != 0 || u.Limits.ActiveJobs != 5 || u.Limits.OpenUploads != 2 || u.ActiveJobs != 1 || u.OpenUploads != 2 {
		t.Fatalf("usage %+v", u)
	}
	if _, err := start("ann@example.com", 1000); err == nil {
		t.Fatal("a third open upload passed: the admin's limits must keep the default open-upload limit")
	}
}
