package mongo

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/pkg/server"
)

// openTest opens a database of its own for the test, and drops it at the end.
func openTest(t testing.TB, chunkSize int32) *DB {
	t.Helper()
	uri := testenv.Get(t, testenv.MongoURI)
	ctx := context.Background()
	name := "test_" + server.NewID()[:16]
	db, err := Open(ctx, Config{
		URI: uri, Database: name, ChunkSize: chunkSize,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Database().Drop(ctx); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
		if err := db.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// ferretDB reports whether the server is FerretDB rather than MongoDB.
func ferretDB(t testing.TB, db *DB) bool {
	t.Helper()
	var info bson.M
	if err := db.Database().RunCommand(context.Background(), bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		t.Fatalf("buildInfo: %v", err)
	}
	_, ok := info["ferretdbVersion"]
	return ok
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if !server.IsCode(err, code) {
		t.Fatalf("got error %v (code %q), want code %q", err, server.ErrorCode(err), code)
	}
}

func TestOpenPing(t *testing.T) {
	db := openTest(t, 0)
	if err := db.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if db.chunkSize != DefaultChunkSize {
		t.Errorf("chunk size %d, want the default %d", db.chunkSize, DefaultChunkSize)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []Config{
		{},
		{URI: "http://127.0.0.1:27017/"},
		{URI: "mongodb://127.0.0.1:27017/", ChunkSize: -1},
	} {
		_, err := Open(ctx, cfg)
		wantCode(t, err, server.EINVALID)
	}
	// Nothing listens on port 1: the server cannot be selected, which is EUNAVAILABLE.
	_, err := Open(ctx, Config{URI: "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300"})
	wantCode(t, err, server.EUNAVAILABLE)
	if !strings.Contains(err.Error(), "ping") {
		t.Errorf("error %q does not say what failed", err)
	}
}

func TestUploadStore(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, 0).Uploads()
	u := &server.Upload{ID: server.NewID(), Owner: "a@example.com", Filename: "clip.mp4", Size: 1000, PartSize: 128 << 10, SHA256: "ab12"}
	if err := s.CreateUpload(ctx, u); err != nil {
		t.Fatalf("CreateUpload: %v", err)
	}
	if u.CreatedAt.IsZero() || u.CreatedAt.Location().String() != "UTC" {
		t.Errorf("CreatedAt %v: want it set, in UTC", u.CreatedAt)
	}
	wantCode(t, s.CreateUpload(ctx, u), server.ECONFLICT)
	got, err := s.Upload(ctx, u.ID)
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if *got != *u {
		t.Errorf("Upload returned %+v, want %+v", got, u)
	}
	_, err = s.Upload(ctx, server.NewID())
	wantCode(t, err, server.ENOTFOUND)
	if err := s.DeleteUpload(ctx, u.ID); err != nil {
		t.Fatalf("DeleteUpload: %v", err)
	}
	_, err = s.Upload(ctx, u.ID)
	wantCode(t, err, server.ENOTFOUND)
	if err := s.DeleteUpload(ctx, u.ID); err != nil {
		t.Errorf("DeleteUpload of a missing upload: %v", err)
	}
	wantCode(t, s.CreateUpload(ctx, &server.Upload{}), server.EINVALID)
}

func TestStaleUploads(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, 0).Uploads()
	now := time.Now().UTC()
	old := &server.Upload{ID: server.NewID(), Owner: "a@example.com", Filename: "a.mp4", Size: 1, PartSize: 1, CreatedAt: now.Add(-48 * time.Hour)}
	older := &server.Upload{ID: server.NewID(), Owner: "a@example.com", Filename: "b.mp4", Size: 1, PartSize: 1, CreatedAt: now.Add(-72 * time.Hour)}
	fresh := &server.Upload{ID: server.NewID(), Owner: "a@example.com", Filename: "c.mp4", Size: 1, PartSize: 1, CreatedAt: now}
	for _, u := range []*server.Upload{old, older, fresh} {
		if err := s.CreateUpload(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.StaleUploads(ctx, now.Add(-24*time.Hour), 10)
	if err != nil || len(got) != 2 || got[0].ID != older.ID || got[1].ID != old.ID {
		t.Fatalf("StaleUploads = %v, %v; want the two old ones, oldest first", got, err)
	}
	if got, _ := s.StaleUploads(ctx, now.Add(-24*time.Hour), 1); len(got) != 1 {
		t.Fatalf("limit ignored: %d", len(got))
	}
}

func TestSentLog(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, 0).SentLog()
	key := "job-1:done"
	if sent, err := s.Sent(ctx, key); err != nil || sent {
		t.Fatalf("Sent before marking = %v, %v; want false, nil", sent, err)
	}
	for i := range 2 {
		if err := s.MarkSent(ctx, key); err != nil {
			t.Fatalf("MarkSent #%d: %v", i+1, err)
		}
	}
	if sent, err := s.Sent(ctx, key); err != nil || !sent {
		t.Fatalf("Sent after marking = %v, %v; want true, nil", sent, err)
	}
	if sent, err := s.Sent(ctx, "job-2:done"); err != nil || sent {
		t.Fatalf("Sent of another key = %v, %v; want false, nil", sent, err)
	}
}
