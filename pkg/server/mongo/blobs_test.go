package mongo

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/servertest"
	"github.com/v2m/v2m/pkg/server/worker/workertest"
)

const (
	testChunk = 128 << 10
	testPart  = 4 * testChunk // 512 KiB
)

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := crand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// newUpload returns an upload of data in testPart parts.
func newUpload(data []byte) *server.Upload {
	return &server.Upload{
		ID: server.NewID(), Owner: "a@example.com", Filename: "clip.mp4",
		Size: int64(len(data)), PartSize: testPart, SHA256: sum(data),
	}
}

func part(u *server.Upload, data []byte, n int) []byte {
	off := int64(n) * u.PartSize
	return data[off : off+u.PartLen(n)]
}

func writeParts(t testing.TB, s *BlobStore, u *server.Upload, data []byte, parts ...int) {
	t.Helper()
	for _, n := range parts {
		if err := s.WritePart(context.Background(), u, n, bytes.NewReader(part(u, data, n))); err != nil {
			t.Fatalf("WritePart %d: %v", n, err)
		}
	}
}

func readAll(t testing.TB, s *BlobStore, bucket, fid string) []byte {
	t.Helper()
	b, err := s.Open(context.Background(), bucket, fid)
	if err != nil {
		t.Fatalf("Open %s/%s: %v", bucket, fid, err)
	}
	defer b.Close()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatalf("read %s/%s: %v", bucket, fid, err)
	}
	if int64(len(got)) != b.Size() {
		t.Errorf("read %d bytes, Size says %d", len(got), b.Size())
	}
	return got
}

func countChunks(t testing.TB, db *DB, bucket, fid string) int64 {
	t.Helper()
	oid, _ := bson.ObjectIDFromHex(fid)
	n, err := db.Database().Collection(bucket+".chunks").CountDocuments(context.Background(), bson.D{{Key: "files_id", Value: oid}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUploadConcurrentParts(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, testChunk)
	s := db.Blobs()
	data := randomBytes(t, 7*testPart+testPart/2+12345) // 8 parts, the last one short
	u := newUpload(data)
	if u.Parts() != 8 {
		t.Fatalf("test data has %d parts", u.Parts())
	}

	// Half of the parts first, out of order, then the rest in parallel.
	writeParts(t, s, u, data, 5, 2, 7)
	got, err := s.Parts(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 5, 7}; !slices.Equal(got, want) {
		t.Errorf("Parts = %v, want %v", got, want)
	}
	wantCode(t, s.CompleteUpload(ctx, u), server.ECONFLICT)

	var wg sync.WaitGroup
	errs := make(chan error, u.Parts())
	for _, n := range rand.Perm(u.Parts()) {
		if n == 2 || n == 5 || n == 7 {
			continue
		}
		wg.Go(func() {
			if err := s.WritePart(ctx, u, n, bytes.NewReader(part(u, data, n))); err != nil {
				errs <- fmt.Errorf("part %d: %w", n, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, _ = s.Parts(ctx, u)
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7}; !slices.Equal(got, want) {
		t.Fatalf("Parts = %v, want %v", got, want)
	}

	if err := s.CompleteUpload(ctx, u); err != nil {
		t.Fatalf("CompleteUpload: %v", err)
	}
	if err := s.CompleteUpload(ctx, u); err != nil {
		t.Errorf("CompleteUpload again: %v", err)
	}
	if got := readAll(t, s, server.BucketVideos, u.ID); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes that differ from the %d written", len(got), len(data))
	}
	if parts, _ := s.Parts(ctx, u); len(parts) != 0 {
		t.Errorf("Parts after completion = %v, want none", parts)
	}
	// Aborting a completed upload leaves its file alone.
	if err := s.AbortUpload(ctx, u); err != nil {
		t.Fatalf("AbortUpload: %v", err)
	}

	// The file is standard GridFS: the driver's own bucket reads it.
	oid, _ := bson.ObjectIDFromHex(u.ID)
	bucket := db.Database().GridFSBucket(options.GridFSBucket().SetName(server.BucketVideos))
	ds, err := bucket.OpenDownloadStream(ctx, oid)
	if err != nil {
		t.Fatalf("driver OpenDownloadStream: %v", err)
	}
	defer ds.Close()
	viaDriver, err := io.ReadAll(ds)
	if err != nil {
		t.Fatalf("driver download: %v", err)
	}
	if !bytes.Equal(viaDriver, data) {
		t.Errorf("the driver read %d bytes that differ from the %d written", len(viaDriver), len(data))
	}
	f := ds.GetFile()
	if f.Name != u.Filename || f.Length != u.Size || f.ChunkSize != testChunk {
		t.Errorf("driver sees file %+v", f)
	}
	var meta struct {
		Owner string `bson:"owner"`
	}
	if err := bson.Unmarshal(f.Metadata, &meta); err != nil || meta.Owner != u.Owner {
		t.Errorf("metadata %v (%v), want owner %s", f.Metadata, err, u.Owner)
	}
}

func TestWritePartErrors(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, testChunk)
	s := db.Blobs()
	data := randomBytes(t, 2*testPart+1000)
	u := newUpload(data)

	// A short part, and a long one, are refused and not listed.
	wantCode(t, s.WritePart(ctx, u, 0, bytes.NewReader(data[:testPart-1])), server.EINVALID)
	wantCode(t, s.WritePart(ctx, u, 1, bytes.NewReader(data[:testPart+1])), server.EINVALID)
	wantCode(t, s.WritePart(ctx, u, 2, bytes.NewReader(data[:999])), server.EINVALID)
	wantCode(t, s.WritePart(ctx, u, 2, bytes.NewReader(data[:1001])), server.EINVALID)
	if parts, _ := s.Parts(ctx, u); len(parts) != 0 {
		t.Errorf("Parts after bad writes = %v, want none", parts)
	}
	// Parts out of range.
	wantCode(t, s.WritePart(ctx, u, 3, bytes.NewReader(nil)), server.EINVALID)
	wantCode(t, s.WritePart(ctx, u, -1, bytes.NewReader(nil)), server.EINVALID)
	// A part size the chunk size does not divide.
	odd := *u
	odd.PartSize = testPart + 1
	wantCode(t, s.WritePart(ctx, &odd, 0, bytes.NewReader(data[:odd.PartSize])), server.EINVALID)
	wantCode(t, s.CompleteUpload(ctx, &odd), server.EINVALID)
	bad := *u
	bad.ID = "not-an-object-id"
	wantCode(t, s.WritePart(ctx, &bad, 0, bytes.NewReader(data[:testPart])), server.EINVALID)

	// A reader that fails is not EINVALID, and leaves the part unmarked.
	err := s.WritePart(ctx, u, 0, io.MultiReader(bytes.NewReader(data[:1000]), failingReader{}))
	if err == nil || server.IsCode(err, server.EINVALID) {
		t.Errorf("WritePart from a failing reader: %v", err)
	}

	// Rewriting parts replaces them: garbage first, then the right bytes.
	writeParts(t, s, u, data, 2)
	for n := range 2 {
		if err := s.WritePart(ctx, u, n, bytes.NewReader(randomBytes(t, testPart))); err != nil {
			t.Fatal(err)
		}
	}
	writeParts(t, s, u, data, 0)
	// Part 1 holds garbage and is marked: a short rewrite leaves it as it was.
	wantCode(t, s.WritePart(ctx, u, 1, bytes.NewReader(data[testPart:2*testPart-5])), server.EINVALID)
	if parts, _ := s.Parts(ctx, u); !slices.Equal(parts, []int{0, 1, 2}) {
		t.Errorf("Parts = %v, want [0 1 2]", parts)
	}
	writeParts(t, s, u, data, 1)
	if err := s.CompleteUpload(ctx, u); err != nil {
		t.Fatalf("CompleteUpload after rewrites: %v", err)
	}
	if got := readAll(t, s, server.BucketVideos, u.ID); !bytes.Equal(got, data) {
		t.Fatal("rewritten parts read back wrong")
	}
	if n := countChunks(t, db, server.BucketVideos, u.ID); n != 9 {
		t.Errorf("%d chunks, want 9", n)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, fmt.Errorf("connection reset") }

func TestUploadChecksumMismatch(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, testChunk)
	s := db.Blobs()
	data := randomBytes(t, testPart+testChunk+3)
	u := newUpload(data)
	u.SHA256 = strings.Repeat("0", 64)
	writeParts(t, s, u, data, 1, 0)
	err := s.CompleteUpload(ctx, u)
	wantCode(t, err, server.EINVALID)
	if parts, _ := s.Parts(ctx, u); len(parts) != 0 {
		t.Errorf("Parts after a mismatch = %v, want none", parts)
	}
	if n := countChunks(t, db, server.BucketVideos, u.ID); n != 0 {
		t.Errorf("%d chunks left after a mismatch", n)
	}
	_, err = s.Open(ctx, server.BucketVideos, u.ID)
	wantCode(t, err, server.ENOTFOUND)

	// Upper-case hex is accepted.
	u2 := newUpload(data)
	u2.SHA256 = strings.ToUpper(u2.SHA256)
	writeParts(t, s, u2, data, 0, 1)
	if err := s.CompleteUpload(ctx, u2); err != nil {
		t.Fatalf("CompleteUpload: %v", err)
	}
}

func TestAbortUpload(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, testChunk)
	s := db.Blobs()
	data := randomBytes(t, 2*testPart)
	u := newUpload(data)
	if err := s.AbortUpload(ctx, u); err != nil {
		t.Fatalf("AbortUpload with no parts: %v", err)
	}
	writeParts(t, s, u, data, 1)
	if err := s.AbortUpload(ctx, u); err != nil {
		t.Fatalf("AbortUpload: %v", err)
	}
	if parts, _ := s.Parts(ctx, u); len(parts) != 0 {
		t.Errorf("Parts after abort = %v", parts)
	}
	if n := countChunks(t, db, server.BucketVideos, u.ID); n != 0 {
		t.Errorf("%d chunks left after abort", n)
	}
	wantCode(t, s.CompleteUpload(ctx, u), server.ECONFLICT)
}

func TestEmptyUpload(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testChunk).Blobs()
	u := newUpload(nil)
	u.PartSize = 0
	wantCode(t, s.WritePart(ctx, u, 0, strings.NewReader("x")), server.EINVALID)
	writeParts(t, s, u, nil, 0)
	if err := s.CompleteUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, server.BucketVideos, u.ID); len(got) != 0 {
		t.Errorf("read %d bytes from an empty file", len(got))
	}
}

func TestPutOpenDelete(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, testChunk)
	s := db.Blobs()
	fid := server.NewID()
	first := randomBytes(t, 3*testChunk+17)
	before := time.Now().Add(-time.Second)
	n, err := s.Put(ctx, server.BucketMP3s, fid, "a.mp3", bytes.NewReader(first))
	if err != nil || n != int64(len(first)) {
		t.Fatalf("Put = %d, %v", n, err)
	}
	b, err := s.Open(ctx, server.BucketMP3s, fid)
	if err != nil {
		t.Fatal(err)
	}
	if b.Size() != int64(len(first)) || b.ModTime().Before(before) || b.ModTime().Location() != time.UTC {
		t.Errorf("Size %d, ModTime %v", b.Size(), b.ModTime())
	}
	b.Close()
	if _, err := b.Read(make([]byte, 1)); err == nil {
		t.Error("Read after Close succeeded")
	}

	// Put replaces, with a shorter file of exactly two chunks.
	second := randomBytes(t, 2*testChunk)
	if n, err := s.Put(ctx, server.BucketMP3s, fid, "b.mp3", bytes.NewReader(second)); err != nil || n != int64(len(second)) {
		t.Fatalf("Put again = %d, %v", n, err)
	}
	if got := readAll(t, s, server.BucketMP3s, fid); !bytes.Equal(got, second) {
		t.Error("Put did not replace the file")
	}
	if c := countChunks(t, db, server.BucketMP3s, fid); c != 2 {
		t.Errorf("%d chunks after replacing, want 2", c)
	}
	// Buckets are separate.
	_, err = s.Open(ctx, server.BucketVideos, fid)
	wantCode(t, err, server.ENOTFOUND)

	// Chunks left by an unfinished write of the same fid are overwritten and trimmed.
	orphan := server.NewID()
	u := &server.Upload{ID: orphan, Size: 3 * testPart, PartSize: testPart}
	writeParts(t, s, u, randomBytes(t, 3*testPart), 0, 1)
	small := randomBytes(t, testChunk+1)
	if _, err := s.Put(ctx, server.BucketVideos, orphan, "c", bytes.NewReader(small)); err != nil {
		t.Fatalf("Put over orphan chunks: %v", err)
	}
	if got := readAll(t, s, server.BucketVideos, orphan); !bytes.Equal(got, small) {
		t.Error("Put over orphan chunks reads back wrong")
	}
	if c := countChunks(t, db, server.BucketVideos, orphan); c != 2 {
		t.Errorf("%d chunks after Put over orphans, want 2", c)
	}

	// An empty file.
	empty := server.NewID()
	if n, err := s.Put(ctx, server.BucketMP3s, empty, "e", strings.NewReader("")); err != nil || n != 0 {
		t.Fatalf("Put empty = %d, %v", n, err)
	}
	if got := readAll(t, s, server.BucketMP3s, empty); len(got) != 0 {
		t.Errorf("empty file read %d bytes", len(got))
	}

	// A failing reader leaves no file and no chunks.
	broken := server.NewID()
	if _, err := s.Put(ctx, server.BucketMP3s, broken, "x", io.MultiReader(bytes.NewReader(first), failingReader{})); err == nil {
		t.Error("Put from a failing reader succeeded")
	}
	_, err = s.Open(ctx, server.BucketMP3s, broken)
	wantCode(t, err, server.ENOTFOUND)
	if c := countChunks(t, db, server.BucketMP3s, broken); c != 0 {
		t.Errorf("%d chunks left by a failed Put", c)
	}

	if err := s.Delete(ctx, server.BucketMP3s, fid); err != nil {
		t.Fatal(err)
	}
	_, err = s.Open(ctx, server.BucketMP3s, fid)
	wantCode(t, err, server.ENOTFOUND)
	if c := countChunks(t, db, server.BucketMP3s, fid); c != 0 {
		t.Errorf("%d chunks left after Delete", c)
	}
	if err := s.Delete(ctx, server.BucketMP3s, fid); err != nil {
		t.Errorf("Delete of a missing file: %v", err)
	}
	if err := s.Delete(ctx, server.BucketMP3s, "nonsense"); err != nil {
		t.Errorf("Delete of a malformed id: %v", err)
	}

	_, err = s.Open(ctx, server.BucketMP3s, server.NewID())
	wantCode(t, err, server.ENOTFOUND)
	_, err = s.Open(ctx, server.BucketMP3s, "nonsense")
	wantCode(t, err, server.ENOTFOUND)
	_, err = s.Open(ctx, "other", fid)
	wantCode(t, err, server.EINVALID)
	_, err = s.Put(ctx, "other", fid, "x", strings.NewReader("x"))
	wantCode(t, err, server.EINVALID)
	_, err = s.Put(ctx, server.BucketMP3s, "nonsense", "x", strings.NewReader("x"))
	wantCode(t, err, server.EINVALID)
}

func TestBlobSeek(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testChunk).Blobs()
	data := randomBytes(t, 5*testChunk+777)
	fid := server.NewID()
	if _, err := s.Put(ctx, server.BucketVideos, fid, "v.mp4", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	b, err := s.Open(ctx, server.BucketVideos, fid)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	size := int64(len(data))

	// Each read is checked against data; jumps go back and forth, within and across chunks.
	offsets := []int64{0, 1, testChunk - 1, testChunk, testChunk + 1, 3*testChunk + 5, 2, size - 1,
		size - testChunk, 4 * testChunk, 4*testChunk + 100, 4*testChunk + 50, size}
	for _, off := range offsets {
		for _, n := range []int{1, 1000, 2*testChunk + 3} {
			if pos, err := b.Seek(off, io.SeekStart); err != nil || pos != off {
				t.Fatalf("Seek(%d) = %d, %v", off, pos, err)
			}
			buf := make([]byte, n)
			got, err := io.ReadFull(b, buf)
			want := min(int64(n), size-off)
			if int64(got) != want || (err != nil && want == int64(n)) {
				t.Fatalf("at %d read %d of %d bytes: %v", off, got, n, err)
			}
			if !bytes.Equal(buf[:got], data[off:off+int64(got)]) {
				t.Fatalf("at %d: %d bytes differ", off, got)
			}
		}
	}
	if pos, err := b.Seek(-10, io.SeekEnd); err != nil || pos != size-10 {
		t.Fatalf("Seek(-10, End) = %d, %v", pos, err)
	}
	if pos, err := b.Seek(5, io.SeekCurrent); err != nil || pos != size-5 {
		t.Fatalf("Seek(5, Current) = %d, %v", pos, err)
	}
	rest, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(rest, data[size-5:]) {
		t.Fatalf("read the last 5 bytes: %x, %v", rest, err)
	}
	if _, err := b.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek to -1 succeeded")
	}
	if _, err := b.Seek(0, 7); err == nil {
		t.Error("Seek with a bad whence succeeded")
	}
	if pos, err := b.Seek(size+10, io.SeekStart); err != nil || pos != size+10 {
		t.Fatalf("Seek past the end = %d, %v", pos, err)
	}
	if n, err := b.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read past the end = %d, %v; want 0, EOF", n, err)
	}
}

func TestBlobServeContent(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testChunk).Blobs()
	data := randomBytes(t, 3*testChunk+99)
	fid := server.NewID()
	if _, err := s.Put(ctx, server.BucketMP3s, fid, "a.mp3", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	size := len(data)
	for _, tc := range []struct {
		rng        string
		from, upto int // data[from:upto]
	}{
		{"bytes=100000-300000", 100000, 300001},
		{"bytes=131072-131072", testChunk, testChunk + 1},
		{fmt.Sprintf("bytes=%d-", size-1), size - 1, size},
		{"bytes=-500", size - 500, size},
		{"", 0, size},
	} {
		b, err := s.Open(ctx, server.BucketMP3s, fid)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodGet, "/mp3", nil)
		if tc.rng != "" {
			req.Header.Set("Range", tc.rng)
		}
		rec := httptest.NewRecorder()
		http.ServeContent(rec, req, "a.mp3", b.ModTime(), b)
		b.Close()
		wantStatus := http.StatusPartialContent
		if tc.rng == "" {
			wantStatus = http.StatusOK
		}
		if rec.Code != wantStatus {
			t.Errorf("Range %q: status %d, want %d", tc.rng, rec.Code, wantStatus)
			continue
		}
		if !bytes.Equal(rec.Body.Bytes(), data[tc.from:tc.upto]) {
			t.Errorf("Range %q: got %d bytes that differ from data[%d:%d]", tc.rng, rec.Body.Len(), tc.from, tc.upto)
		}
	}
}

// BenchmarkWritePart measures the throughput of writing 512 KiB parts in 128 KiB chunks.
func BenchmarkWritePart(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, testChunk).Blobs()
	data := randomBytes(b, testPart)
	u := &server.Upload{ID: server.NewID(), Size: int64(b.N) * testPart, PartSize: testPart}
	b.SetBytes(testPart)
	b.ResetTimer()
	for n := range b.N {
		if err := s.WritePart(ctx, u, n, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBlobStoreContract(t *testing.T) {
	servertest.TestBlobStore(t, servertest.BlobStoreOptions{
		New:      func(t *testing.T) server.BlobStore { return openTest(t, testChunk).Blobs() },
		PartSize: 2 * testPart, // 1 MiB, 8 chunks
	})
}

// TestCompleteAfterInterruptedMove: a CompleteUpload that stopped while it moved a rewritten
// part's chunks leaves a mark; a later one that finds an old mark discards that part (the
// client sends it again) rather than assemble chunks of unknown origin, and one that finds a
// fresh mark leaves it to the completion under way.
func TestCompleteAfterInterruptedMove(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, testChunk)
	s := db.Blobs()
	data := randomBytes(t, 2*testPart+100)
	u := newUpload(data)
	writeParts(t, s, u, data, 0, 1, 2)
	writeParts(t, s, u, data, 1) // a rewrite: its chunks are under an attempt id
	mark := func(at time.Time) {
		t.Helper()
		_, err := s.parts.UpdateOne(ctx, bson.D{{Key: "_id", Value: partKey(u.ID, 1)}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "moving", Value: at}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	mark(time.Now())
	wantCode(t, s.CompleteUpload(ctx, u), server.ECONFLICT)
	if parts, _ := s.Parts(ctx, u); !slices.Equal(parts, []int{0, 1, 2}) {
		t.Fatalf("a completion under way lost parts: %v", parts)
	}
	mark(time.Now().Add(-2 * time.Hour))
	err := s.CompleteUpload(ctx, u)
	wantCode(t, err, server.ECONFLICT)
	if parts, _ := s.Parts(ctx, u); !slices.Equal(parts, []int{0, 2}) {
		t.Fatalf("Parts after an interrupted move = %v, want [0 2]", parts)
	}
	writeParts(t, s, u, data, 1)
	if err := s.CompleteUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, server.BucketVideos, u.ID); !bytes.Equal(got, data) {
		t.Fatal("the file differs after the part was sent again")
	}
	if n := countChunks(t, db, server.BucketVideos, u.ID); n != 9 {
		t.Errorf("%d chunks, want 9", n)
	}
	if n, err := db.Database().Collection("videos.chunks").CountDocuments(ctx, bson.D{}); err != nil || n != 9 {
		t.Errorf("%d chunks in the bucket, want 9 (no attempt left over): %v", n, err)
	}
}

func TestOrphanedFilesRemoved(t *testing.T) {
	db := openTest(t, testChunk)
	workertest.RunOrphans(t, workertest.Stores{Jobs: db.Jobs(), Uploads: db.Uploads(), Blobs: db.Blobs(),
		Backdate: func(t *testing.T, bucket, fid string, age time.Duration) {
			oid, _ := bson.ObjectIDFromHex(fid)
			_, err := db.Database().Collection(bucket+".files").UpdateOne(context.Background(), bson.D{{Key: "_id", Value: oid}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "uploadDate", Value: time.Now().Add(-age)}}}})
			if err != nil {
				t.Fatal(err)
			}
		}})
}

// TestCompleteWaitsForLiveInPlaceWriter: the mark of a part's in-place write under way holds
// CompleteUpload up; the mark of a writer that died (not refreshed for minutes) does not.
func TestCompleteWaitsForLiveInPlaceWriter(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, testChunk)
	s := db.Blobs()
	data := randomBytes(t, testPart+100)
	u := newUpload(data)
	writeParts(t, s, u, data, 0, 1)
	mark := func(at time.Time) {
		t.Helper()
		_, err := s.parts.UpdateOne(ctx, bson.D{{Key: "_id", Value: partKey(u.ID, 0) + ".w"}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "upload", Value: u.ID}, {Key: "n", Value: 0}, {Key: "writing_since", Value: at}}}},
			options.UpdateOne().SetUpsert(true))
		if err != nil {
			t.Fatal(err)
		}
	}
	mark(time.Now())
	wantCode(t, s.CompleteUpload(ctx, u), server.ECONFLICT)
	mark(time.Now().Add(-markStale - time.Minute))
	if err := s.CompleteUpload(ctx, u); err != nil {
		t.Fatalf("a dead writer's mark holds completion up: %v", err)
	}
	if got := readAll(t, s, server.BucketVideos, u.ID); !bytes.Equal(got, data) {
		t.Fatal("the file differs")
	}
}
