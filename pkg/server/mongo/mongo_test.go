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

// TestUploadDefaults covers what the mongo store adds to the UploadStore contract: an upload
// without an id is refused, and a zero CreatedAt is set to now, in UTC.
func TestUploadDefaults(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, 0).Uploads()
	wantCode(t, s.CreateUpload(ctx, &server.Upload{}), server.EINVALID)
	u := &server.Upload{ID: server.NewID(), Owner: "a@example.com", Filename: "clip.mp4", Size: 1000, PartSize: 128 << 10}
	if err := s.CreateUpload(ctx, u); err != nil {
		t.Fatalf("CreateUpload: %v", err)
	}
	if u.CreatedAt.IsZero() || u.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt %v: want it set, in UTC", u.CreatedAt)
	}
	if got, err := s.Upload(ctx, u.ID); err != nil || *got != *u {
		t.Errorf("Upload = %+v, %v; want %+v", got, err, u)
	}
}
