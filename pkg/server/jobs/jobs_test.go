package jobs_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/disk"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/wire"
)

// newService returns the service on real SQLite stores, disk blobs and the SQLite queue, as
// standalone wires it, with tiny parts.
func newService(t *testing.T) (*jobs.Service, *sqlite.DB) {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "v2m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return &jobs.Service{Jobs: db.Jobs(), Uploads: db.Uploads(), Blobs: blobs, Queue: db.Queue(sqlite.QueueConfig{}),
		PartSize: 4, MaxUploadSize: 64}, db
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if !server.IsCode(err, code) {
		t.Fatalf("%s: %v, want %s", what, err, code)
	}
}

func upload(t *testing.T, s *jobs.Service, owner string, data []byte) *server.Upload {
	t.Helper()
	u, err := s.StartUpload(t.Context(), owner, jobs.NewUpload{Filename: "dir/talk.mp4", Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	for n := range u.Parts() {
		part := data[int64(n)*u.PartSize : int64(n)*u.PartSize+u.PartLen(n)]
		if err := s.WritePart(t.Context(), u, n, bytes.NewReader(part)); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

func TestStartUploadValidates(t *testing.T) {
	s, _ := newService(t)
	for _, tc := range []struct {
		nu   jobs.NewUpload
		code string
	}{
		{jobs.NewUpload{Filename: "", Size: 1}, server.EINVALID},
		{jobs.NewUpload{Filename: "..", Size: 1}, server.EINVALID},
		{jobs.NewUpload{Filename: "a\x00b.mp4", Size: 1}, server.EINVALID},
		{jobs.NewUpload{Filename: strings.Repeat("a", 256), Size: 1}, server.EINVALID},
		{jobs.NewUpload{Filename: "a.mp4", Size: -1}, server.EINVALID},
		{jobs.NewUpload{Filename: "a.mp4", Size: 65}, server.ETOOLARGE},
		{jobs.NewUpload{Filename: "a.mp4", Size: 1, SHA256: "xyz"}, server.EINVALID},
	} {
		_, err := s.StartUpload(t.Context(), "ann@example.com", tc.nu)
		wantCode(t, tc.nu.Filename, err, tc.code)
	}
	u, err := s.StartUpload(t.Context(), "ann@example.com", jobs.NewUpload{Filename: `C:\videos\talk.mp4`, Size: 10, SHA256: strings.Repeat("AB", 32)})
	if err != nil {
		t.Fatal(err)
	}
	if u.Filename != "talk.mp4" || u.PartSize != 4 || u.Parts() != 3 || u.SHA256 != strings.Repeat("ab", 32) {
		t.Errorf("upload %+v", u)
	}
}

// TestCompleteIsIdempotentAndOwned: the job takes the upload's id; completing again (a lost
// answer) returns the same job; another user sees nothing of it.
func TestCompleteIsIdempotentAndOwned(t *testing.T) {
	s, _ := newService(t)
	ctx := t.Context()
	u := upload(t, s, "ann@example.com", []byte("0123456789"))
	if _, err := s.Upload(ctx, "bob@example.com", u.ID); !server.IsCode(err, server.ENOTFOUND) {
		t.Fatalf("bob sees ann's upload: %v", err)
	}
	if _, err := s.Complete(ctx, "bob@example.com", u.ID); !server.IsCode(err, server.ENOTFOUND) {
		t.Fatalf("bob completes ann's upload: %v", err)
	}
	j, err := s.Complete(ctx, "ann@example.com", u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.ID != u.ID || j.VideoFID != u.ID || j.State != server.JobQueued || j.Filename != "talk.mp4" || j.Size != 10 {
		t.Fatalf("job %+v", j)
	}
	again, err := s.Complete(ctx, "ann@example.com", u.ID)
	if err != nil || again.ID != j.ID || again.MP3FID != j.MP3FID {
		t.Fatalf("second Complete = %+v, %v; want the same job", again, err)
	}
	if _, err := s.Job(ctx, "bob@example.com", j.ID); !server.IsCode(err, server.ENOTFOUND) {
		t.Fatalf("bob sees ann's job: %v", err)
	}
	if _, err := s.Upload(ctx, "ann@example.com", u.ID); !server.IsCode(err, server.ENOTFOUND) {
		t.Fatalf("the upload record outlived its completion: %v", err)
	}
}

func TestCompleteRefusesMissingPartsAndBadChecksums(t *testing.T) {
	s, _ := newService(t)
	ctx := t.Context()
	u, err := s.StartUpload(ctx, "ann@example.com", jobs.NewUpload{Filename: "a.mp4", Size: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WritePart(ctx, u, 0, strings.NewReader("0123")); err != nil {
		t.Fatal(err)
	}
	_, err = s.Complete(ctx, "ann@example.com", u.ID)
	wantCode(t, "complete with a part missing", err, server.ECONFLICT)
	wantCode(t, "part out of range", s.WritePart(ctx, u, 2, strings.NewReader("0123")), server.EINVALID)

	bad, err := s.StartUpload(ctx, "ann@example.com", jobs.NewUpload{Filename: "a.mp4", Size: 4, SHA256: strings.Repeat("0", 64)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WritePart(ctx, bad, 0, strings.NewReader("0123")); err != nil {
		t.Fatal(err)
	}
	_, err = s.Complete(ctx, "ann@example.com", bad.ID)
	wantCode(t, "complete with a wrong sha256", err, server.EINVALID)
	if _, err := s.Upload(ctx, "ann@example.com", bad.ID); !server.IsCode(err, server.ENOTFOUND) {
		t.Errorf("an upload with a wrong checksum is kept: %v", err)
	}
}

// brokenQueue is a real SQLite queue whose database is closed: every publish fails.
func brokenQueue(t *testing.T) server.Queue {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "gone.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	return db.Queue(sqlite.QueueConfig{})
}

// TestPublishFailureKeepsTheJob: when the queue is down the job is still created and queued,
// for the sweeper to publish; Republish then reports the failure.
func TestPublishFailureKeepsTheJob(t *testing.T) {
	s, _ := newService(t)
	s.Queue = brokenQueue(t)
	u := upload(t, s, "ann@example.com", []byte("abcd"))
	j, err := s.Complete(t.Context(), "ann@example.com", u.ID)
	if err != nil || j.State != server.JobQueued {
		t.Fatalf("Complete with the queue down = %+v, %v; want a queued job", j, err)
	}
	if ok, err := s.Republish(t.Context(), j); ok || err == nil {
		t.Fatalf("Republish with the queue down = %v, %v; want an error", ok, err)
	}
}

// TestRepublishLeavesChangedJobsAlone: a job that finished, or disappeared, since it was listed
// is not published again.
func TestRepublishLeavesChangedJobsAlone(t *testing.T) {
	s, db := newService(t)
	ctx := t.Context()
	j, err := s.Complete(ctx, "ann@example.com", upload(t, s, "ann@example.com", []byte("abcd")).ID)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Republish(ctx, j); !ok || err != nil {
		t.Fatalf("Republish of a queued job = %v, %v", ok, err)
	}
	if _, err := db.Jobs().FailJob(ctx, j.ID, "gone"); err != nil {
		t.Fatal(err)
	}
	failed, _ := db.Jobs().Job(ctx, j.ID)
	if ok, err := s.Republish(ctx, failed); ok || err != nil {
		t.Fatalf("Republish of a failed job = %v, %v; want false, nil", ok, err)
	}
	ghost := &server.Job{ID: server.NewID(), State: server.JobQueued}
	if ok, err := s.Republish(ctx, ghost); ok || err != nil {
		t.Fatalf("Republish of a job that is gone = %v, %v; want false, nil", ok, err)
	}
}

type failingReader struct{ after int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.after <= 0 {
		return 0, errors.New("client gone")
	}
	n := min(len(p), r.after)
	r.after -= n
	return n, nil
}

// TestSubmitIsAllOrNothing: a reader that fails or runs over the limit leaves no video; one
// that ends cleanly gives a queued job whose video is stored whole.
func TestSubmitIsAllOrNothing(t *testing.T) {
	s, _ := newService(t)
	ctx := t.Context()
	if _, err := s.Submit(ctx, "ann@example.com", "a.mp4", &failingReader{after: 10}); err == nil {
		t.Fatal("Submit of a failing body succeeded")
	}
	_, err := s.Submit(ctx, "ann@example.com", "a.mp4", bytes.NewReader(make([]byte, 65)))
	wantCode(t, "Submit over the limit", err, server.ETOOLARGE)
	lister := s.Blobs.(server.BlobLister)
	if files, err := lister.ListBlobs(ctx, server.BucketVideos, "", 10); err != nil || len(files) != 0 {
		t.Fatalf("videos left by failed submits: %v, %v", files, err)
	}
	j, err := s.Submit(ctx, "ann@example.com", "a.mp4", bytes.NewReader([]byte("video")))
	if err != nil || j.State != server.JobQueued || j.Size != 5 {
		t.Fatalf("Submit = %+v, %v", j, err)
	}
	b, err := s.Blobs.Open(ctx, server.BucketVideos, j.VideoFID)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got, _ := io.ReadAll(b); string(got) != "video" {
		t.Errorf("stored %q", got)
	}
}

// TestOpenMP3: only the owner's done job's MP3 opens.
func TestOpenMP3(t *testing.T) {
	s, db := newService(t)
	ctx := t.Context()
	j, err := s.Complete(ctx, "ann@example.com", upload(t, s, "ann@example.com", []byte("abcd")).ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenFile(ctx, "ann@example.com", j.MP3FID); !server.IsCode(err, server.ENOTFOUND) {
		t.Fatalf("the MP3 of a queued job opens: %v", err)
	}
	finish(t, s, db, j, "mp3", nil)
	if _, err := s.OpenFile(ctx, "bob@example.com", j.MP3FID); !server.IsCode(err, server.ENOTFOUND) {
		t.Fatalf("bob opens ann's MP3: %v", err)
	}
	d, err := s.OpenFile(ctx, "ann@example.com", j.MP3FID)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if d.Type != "audio/mpeg" || d.Name != "talk.mp3" {
		t.Errorf("download %q as %q", d.Name, d.Type)
	}
	for _, fid := range []string{"not-an-id", server.FileFID(j.MP3FID, 0), j.MP3FID + "-1", j.MP3FID + "-00"} {
		if _, err := s.OpenFile(context.Background(), "ann@example.com", fid); !server.IsCode(err, server.ENOTFOUND) {
			t.Fatalf("fid %q: %v", fid, err)
		}
	}
	var zbuf bytes.Buffer
	var name string
	if err := s.WriteArchive(ctx, "ann@example.com", j.ID, &zbuf, func(n string) { name = n }); err != nil {
		t.Fatal(err)
	}
	if got := zipEntries(t, zbuf.Bytes()); name != "talk.zip" || len(got) != 1 || got["talk.mp3"] != "mp3" {
		t.Errorf("archive %q of a job of one MP3 holds %q", name, got)
	}
}

// TestOpenSplitFiles: a split job's MP3FID is its zip; each of its files opens by its own
// fid as the stored zip entry, with ranges.
func TestOpenSplitFiles(t *testing.T) {
	s, db := newService(t)
	ctx := t.Context()
	j, err := s.Complete(ctx, "ann@example.com", upload(t, s, "ann@example.com", []byte("abcd")).ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteArchive(ctx, "ann@example.com", j.ID, io.Discard, func(string) {}); !server.IsCode(err, server.ECONFLICT) {
		t.Fatalf("archive of a queued job: %v, want ECONFLICT", err)
	}
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for i, body := range []string{"first chapter", "second"} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: wire.TrackName(i, "x"), Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
	}
	zw.Close()
	files := []server.JobFile{{Title: "Intro: A/B", End: time.Second, Size: 13}, {Title: "", Start: time.Second, End: 2 * time.Second, Size: 6}}
	finish(t, s, db, j, zbuf.String(), files)

	d, err := s.OpenFile(ctx, "ann@example.com", j.MP3FID)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if d.Type != "application/zip" || d.Name != "talk.zip" {
		t.Errorf("the split job's MP3FID downloads as %q, %q", d.Name, d.Type)
	}
	for i, want := range []struct{ name, body string }{{"01 - Intro_ A_B.mp3", "first chapter"}, {"02 - Chapter 2.mp3", "second"}} {
		d, err := s.OpenFile(ctx, "ann@example.com", server.FileFID(j.MP3FID, i))
		if err != nil {
			t.Fatalf("file %d: %v", i, err)
		}
		got, _ := io.ReadAll(d)
		if d.Name != want.name || d.Type != "audio/mpeg" || string(got) != want.body || d.Size() != int64(len(want.body)) {
			t.Errorf("file %d: %q %q %q (%d bytes)", i, d.Name, d.Type, got, d.Size())
		}
		if _, err := d.Seek(3, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(d)
		if string(rest) != want.body[3:] {
			t.Errorf("file %d from byte 3: %q", i, rest)
		}
		d.Close()
	}
	if _, err := s.OpenFile(ctx, "ann@example.com", server.FileFID(j.MP3FID, 2)); !server.IsCode(err, server.ENOTFOUND) {
		t.Errorf("a third file of two: %v", err)
	}
	if _, err := s.OpenFile(ctx, "bob@example.com", server.FileFID(j.MP3FID, 0)); !server.IsCode(err, server.ENOTFOUND) {
		t.Errorf("bob opens ann's file: %v", err)
	}
	var out bytes.Buffer
	if err := s.WriteArchive(ctx, "ann@example.com", j.ID, &out, func(string) {}); err != nil || !bytes.Equal(out.Bytes(), zbuf.Bytes()) {
		t.Errorf("the archive of a split job is not its stored zip: %v", err)
	}
}

// finish claims and finishes job j with body as its stored file, and files.
func finish(t *testing.T, s *jobs.Service, db *sqlite.DB, j *server.Job, body string, files []server.JobFile) {
	t.Helper()
	ctx := t.Context()
	claimed, err := db.Jobs().ClaimJob(ctx, j.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Blobs.Put(ctx, server.BucketMP3s, j.MP3FID, "talk.mp3", strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Jobs().FinishJob(ctx, j.ID, claimed.Attempts, server.JobResult{Size: int64(len(body)), Files: files}); err != nil {
		t.Fatal(err)
	}
}

// zipEntries returns the entries of a zip by name.
func zipEntries(t *testing.T, b []byte) map[string]string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	out := map[string]string{}
	for _, f := range zr.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r)
		r.Close()
		out[f.Name] = string(body)
	}
	return out
}

// TestOptionsGoFromUploadToJob: the options given at StartUpload are parsed onto the upload,
// kept by the store, and copied to the job at Complete; the tutorial's Submit makes a job with
// the defaults.
func TestOptionsGoFromUploadToJob(t *testing.T) {
	s, db := newService(t)
	ctx := t.Context()
	opts := &wire.Options{Bitrate: "192k", Start: "1m30s", Normalize: true, Language: "ENG", Cover: ptr(false)}
	u, err := s.StartUpload(ctx, "ann@example.com", jobs.NewUpload{Filename: "a.mp4", Size: 4, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	want := server.JobOptions{Bitrate: 192, Start: 90 * time.Second, Loudness: -16, Language: "eng", NoCover: true}
	if u.Options != want {
		t.Fatalf("upload options %+v, want %+v", u.Options, want)
	}
	if stored, err := db.Uploads().Upload(ctx, u.ID); err != nil || stored.Options != want {
		t.Fatalf("stored upload options %+v, %v", stored, err)
	}
	if err := s.WritePart(ctx, u, 0, strings.NewReader("abcd")); err != nil {
		t.Fatal(err)
	}
	j, err := s.Complete(ctx, "ann@example.com", u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.Options != want {
		t.Fatalf("job options %+v, want %+v", j.Options, want)
	}
	if stored, err := s.Job(ctx, "ann@example.com", j.ID); err != nil || stored.Options != want {
		t.Fatalf("stored job options %+v, %v", stored, err)
	}
	plain, err := s.Submit(ctx, "ann@example.com", "b.mp4", strings.NewReader("video"))
	if err != nil || plain.Options != (server.JobOptions{}) {
		t.Fatalf("Submit = %+v, %v; want the default options", plain, err)
	}
}

// TestBadOptionsNeverReachTheQueue: StartUpload refuses bad options with EINVALID naming the
// option, and stores nothing: no upload to complete, no job, no message.
func TestBadOptionsNeverReachTheQueue(t *testing.T) {
	s, db := newService(t)
	ctx := t.Context()
	q := s.Queue.(*sqlite.Queue)
	for _, o := range []*wire.Options{
		{Quality: ptr(10)}, {Bitrate: "100k"}, {Start: "2m", End: "1m"}, {Loudness: ptr(0.0)}, {Track: ptr(1), Language: "eng"},
	} {
		_, err := s.StartUpload(ctx, "ann@example.com", jobs.NewUpload{Filename: "a.mp4", Size: 4, Options: o})
		if !server.IsCode(err, server.EINVALID) || !strings.HasPrefix(server.ErrorMessage(err), "option ") {
			t.Errorf("StartUpload with %+v = %v, want EINVALID naming the option", o, err)
		}
	}
	if ups, err := db.Uploads().StaleUploads(ctx, time.Now().Add(time.Hour), 10); err != nil || len(ups) != 0 {
		t.Errorf("uploads stored for bad options: %v, %v", ups, err)
	}
	if js, err := s.ListJobs(ctx, "ann@example.com", 10); err != nil || len(js) != 0 {
		t.Errorf("jobs for bad options: %v, %v", js, err)
	}
	if live, dead, err := q.Depth(ctx, server.TopicVideo); err != nil || live+dead != 0 {
		t.Errorf("queue after bad options: %d live, %d dead, %v", live, dead, err)
	}
}

// TestSourceSize: an upload made from a larger file records that file's size on its job; a
// source size that is not larger than the upload is refused before anything is stored.
func TestSourceSize(t *testing.T) {
	s, _ := newService(t)
	ctx := t.Context()
	for _, bad := range []int64{-1, 4, 3} {
		if _, err := s.StartUpload(ctx, "ann@example.com", jobs.NewUpload{Filename: "a.mp4", Size: 4, SourceSize: bad}); !server.IsCode(err, server.EINVALID) ||
			!strings.Contains(server.ErrorMessage(err), `"source_size"`) {
			t.Errorf("source size %d: %v", bad, err)
		}
	}
	u, err := s.StartUpload(ctx, "ann@example.com", jobs.NewUpload{Filename: "a.mp4", Size: 4, SourceSize: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WritePart(ctx, u, 0, strings.NewReader("abcd")); err != nil {
		t.Fatal(err)
	}
	j, err := s.Complete(ctx, "ann@example.com", u.ID)
	if err != nil || j.SourceSize != 1<<30 || j.Size != 4 {
		t.Fatalf("job %+v, %v", j, err)
	}
	if got, _ := s.Job(ctx, "ann@example.com", j.ID); got.SourceSize != 1<<30 {
		t.Errorf("stored source size %d", got.SourceSize)
	}
}
