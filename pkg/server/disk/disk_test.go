package disk

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/servertest"
)

func setup(t *testing.T, size, partSize int64) (*Store, *server.Upload, []byte) {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	rand.Read(data)
	return s, &server.Upload{ID: server.NewID(), Size: size, PartSize: partSize}, data
}

func part(u *server.Upload, data []byte, n int) []byte {
	off := int64(n) * u.PartSize
	return data[off : off+u.PartLen(n)]
}

func TestPartsOutOfOrderAndParallel(t *testing.T) {
	ctx := context.Background()
	s, u, data := setup(t, 10*1024+17, 1024)
	if u.Parts() != 11 {
		t.Fatalf("parts = %d", u.Parts())
	}
	var wg sync.WaitGroup
	for _, n := range []int{10, 3, 0, 7, 1, 2, 9, 8, 4, 6} { // all but 5
		wg.Go(func() {
			if err := s.WritePart(ctx, u, n, bytes.NewReader(part(u, data, n))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := s.Parts(ctx, u)
	if err != nil || !slices.Equal(got, []int{0, 1, 2, 3, 4, 6, 7, 8, 9, 10}) {
		t.Fatalf("parts = %v %v", got, err)
	}
	if err := s.CompleteUpload(ctx, u); !server.IsCode(err, server.ECONFLICT) {
		t.Fatalf("complete with a part missing: %v", err)
	}
	// A short part and an overlong part are refused and not counted.
	if err := s.WritePart(ctx, u, 5, bytes.NewReader(part(u, data, 5)[:100])); !server.IsCode(err, server.EINVALID) {
		t.Fatalf("short part: %v", err)
	}
	if err := s.WritePart(ctx, u, 5, io.MultiReader(bytes.NewReader(part(u, data, 5)), bytes.NewReader([]byte("x")))); !server.IsCode(err, server.EINVALID) {
		t.Fatalf("long part: %v", err)
	}
	if err := s.WritePart(ctx, u, 11, bytes.NewReader(nil)); !server.IsCode(err, server.EINVALID) {
		t.Fatalf("part out of range: %v", err)
	}
	if got, _ := s.Parts(ctx, u); slices.Contains(got, 5) {
		t.Fatal("bad part counted")
	}
	// Writing a part twice is harmless.
	for range 2 {
		if err := s.WritePart(ctx, u, 5, bytes.NewReader(part(u, data, 5))); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256(data)
	u.SHA256 = hex.EncodeToString(sum[:])
	if err := s.CompleteUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteUpload(ctx, u); err != nil {
		t.Fatalf("second complete: %v", err)
	}
	b, err := s.Open(ctx, server.BucketVideos, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	back, _ := io.ReadAll(b)
	if !bytes.Equal(back, data) || b.Size() != int64(len(data)) {
		t.Fatal("assembled file differs from the source")
	}
}

func TestSHA256Mismatch(t *testing.T) {
	ctx := context.Background()
	s, u, data := setup(t, 3000, 1024)
	u.SHA256 = hex.EncodeToString(make([]byte, 32))
	for n := range u.Parts() {
		if err := s.WritePart(ctx, u, n, bytes.NewReader(part(u, data, n))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CompleteUpload(ctx, u); !server.IsCode(err, server.EINVALID) {
		t.Fatalf("mismatch: %v", err)
	}
	if _, err := s.Open(ctx, server.BucketVideos, u.ID); !server.IsCode(err, server.ENOTFOUND) {
		t.Fatalf("file kept after mismatch: %v", err)
	}
	if p, _ := s.Parts(ctx, u); len(p) != 0 {
		t.Fatalf("parts kept after mismatch: %v", p)
	}
}

func TestEmptyUpload(t *testing.T) {
	ctx := context.Background()
	s, u, _ := setup(t, 0, 1024)
	if err := s.WritePart(ctx, u, 0, bytes.NewReader(nil)); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	b, err := s.Open(ctx, server.BucketVideos, u.ID)
	if err != nil || b.Size() != 0 {
		t.Fatalf("empty: %v", err)
	}
	b.Close()
}

func TestPutOpenRangeDelete(t *testing.T) {
	ctx := context.Background()
	s, _, data := setup(t, 5000, 1024)
	fid := server.NewID()
	if _, err := s.Put(ctx, server.BucketMP3s, fid, "a.mp3", bytes.NewReader([]byte("old"))); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Put(ctx, server.BucketMP3s, fid, "a.mp3", bytes.NewReader(data)); err != nil || n != 5000 {
		t.Fatalf("replace: %d %v", n, err)
	}
	b, err := s.Open(ctx, server.BucketMP3s, fid)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Range", "bytes=1000-1999")
	http.ServeContent(rec, req, "a.mp3", b.ModTime(), b)
	b.Close()
	if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), data[1000:2000]) {
		t.Fatalf("range: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	if err := s.Delete(ctx, server.BucketMP3s, fid); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, server.BucketMP3s, fid); !server.IsCode(err, server.ENOTFOUND) {
		t.Fatalf("after delete: %v", err)
	}
	if err := s.Delete(ctx, server.BucketMP3s, fid); err != nil {
		t.Fatalf("delete twice: %v", err)
	}
	if _, err := s.Open(ctx, server.BucketMP3s, "../../etc/passwd"); !server.IsCode(err, server.ENOTFOUND) {
		t.Fatalf("path traversal: %v", err)
	}
}

func TestBlobStoreContract(t *testing.T) {
	servertest.TestBlobStore(t, servertest.BlobStoreOptions{
		New: func(t *testing.T) server.BlobStore {
			s, err := New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		PartSize: 8 << 20,
	})
}

// TestAbortDuringPartWrite: a part still arriving when its upload is aborted is refused, and
// the upload's directory does not come back.
func TestAbortDuringPartWrite(t *testing.T) {
	ctx := context.Background()
	s, u, data := setup(t, 2048, 1024)
	for _, rewrite := range []bool{false, true} {
		if rewrite {
			u.ID = server.NewID()
			if err := s.WritePart(ctx, u, 0, bytes.NewReader(part(u, data, 0))); err != nil {
				t.Fatal(err)
			}
		}
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() { done <- s.WritePart(ctx, u, 0, pr) }()
		if _, err := pw.Write(part(u, data, 0)[:100]); err != nil { // returns once WritePart reads it
			t.Fatal(err)
		}
		if err := s.AbortUpload(ctx, u); err != nil {
			t.Fatal(err)
		}
		pw.Write(part(u, data, 0)[100:])
		pw.Close()
		if err := <-done; !server.IsCode(err, server.ECONFLICT) {
			t.Fatalf("rewrite=%v: part written across an abort: %v", rewrite, err)
		}
		dir, _ := s.uploadDir(u)
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("rewrite=%v: the aborted upload's directory is back: %v", rewrite, err)
		}
	}
}
