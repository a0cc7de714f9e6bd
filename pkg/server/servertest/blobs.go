package servertest

// The BlobStore contract holds the disk and the GridFS store to the same rules; each store's
// tests call TestBlobStore with a real store.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// BlobStoreOptions says how to get a store and which part size to use.
type BlobStoreOptions struct {
	// New returns an empty store for one test.
	New func(t *testing.T) server.BlobStore
	// PartSize is the part size of the uploads the tests make; the store must accept it.
	PartSize int64
	// Rounds of concurrent writers of one part (default 4).
	Rounds int
}

// TestBlobStore runs every contract test as a subtest.
func TestBlobStore(t *testing.T, c BlobStoreOptions) {
	t.Run("ConcurrentWritersOfOnePart", func(t *testing.T) { concurrentWriters(t, c) })
	t.Run("FailedRewriteKeepsPart", func(t *testing.T) { failedRewrite(t, c) })
	t.Run("FailedLastReadIsNotCounted", func(t *testing.T) { failedLastRead(t, c) })
	t.Run("PutFailureLeavesNothing", func(t *testing.T) { putFailure(t, c) })
	t.Run("ListBlobs", func(t *testing.T) { listBlobs(t, c) })
}

func random(t *testing.T, n int64) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func newUpload(size, partSize int64) *server.Upload {
	return &server.Upload{ID: server.NewID(), Owner: "a@example.com", Filename: "clip.mp4", Size: size,
		PartSize: partSize, CreatedAt: time.Now().UTC()}
}

func part(u *server.Upload, data []byte, n int) []byte {
	off := int64(n) * u.PartSize
	return data[off : off+u.PartLen(n)]
}

func writePart(t *testing.T, s server.BlobStore, u *server.Upload, data []byte, n int) {
	t.Helper()
	if err := s.WritePart(context.Background(), u, n, bytes.NewReader(part(u, data, n))); err != nil {
		t.Fatalf("WritePart %d: %v", n, err)
	}
}

func readAll(t *testing.T, s server.BlobStore, bucket, fid string) []byte {
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
	return got
}

// trickle hands out its bytes a few KiB per Read, so that concurrent writers interleave.
type trickle struct{ b []byte }

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 4<<10)], r.b)
	r.b = r.b[n:]
	return n, nil
}

// badSum yields all of b, then fails the read that yields the last bytes, as the API's CRC-32C
// check does when the checksum differs.
type badSum struct{ b []byte }

func (r *badSum) Read(p []byte) (int, error) {
	n := copy(p[:min(len(p), 4<<10)], r.b)
	r.b = r.b[n:]
	if len(r.b) == 0 {
		return n, server.Errorf(server.EINVALID, "CRC-32C mismatch")
	}
	return n, nil
}

// concurrentWriters sends part 1 six times at once with two different bodies (and two more
// writers whose checksum fails), and checks that the upload ends with one whole body.
func concurrentWriters(t *testing.T, c BlobStoreOptions) {
	ctx := context.Background()
	s := c.New(t)
	rounds := c.Rounds
	if rounds <= 0 {
		rounds = 4
	}
	for round := range rounds {
		data := random(t, 3*c.PartSize)
		u := newUpload(int64(len(data)), c.PartSize)
		writePart(t, s, u, data, 0)
		writePart(t, s, u, data, 2)
		bodies := [][]byte{random(t, c.PartSize), random(t, c.PartSize)}
		corrupt := random(t, c.PartSize)
		if round%2 == 1 {
			writePart(t, s, u, data, 1) // a counted part is being replaced
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				var r io.Reader = &trickle{b: bodies[i%2]}
				if i >= 6 {
					r = &badSum{b: corrupt}
				}
				<-start
				errs[i] = s.WritePart(ctx, u, 1, r)
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for i, err := range errs {
			switch {
			case i >= 6 && err == nil:
				t.Fatalf("round %d: a part whose checksum failed was accepted", round)
			case i < 6 && err == nil:
				ok++
			case i < 6 && !server.IsCode(err, server.ECONFLICT):
				t.Fatalf("round %d: writer %d: %v", round, i, err)
			}
		}
		if ok == 0 {
			t.Fatalf("round %d: no writer succeeded", round)
		}
		if parts, err := s.Parts(ctx, u); err != nil || !slices.Equal(parts, []int{0, 1, 2}) {
			t.Fatalf("round %d: Parts = %v, %v", round, parts, err)
		}
		if err := s.CompleteUpload(ctx, u); err != nil {
			t.Fatalf("round %d: CompleteUpload: %v", round, err)
		}
		got := readAll(t, s, server.BucketVideos, u.ID)
		if int64(len(got)) != u.Size {
			t.Fatalf("round %d: the file has %d bytes, want %d", round, len(got), u.Size)
		}
		if !bytes.Equal(got[:c.PartSize], part(u, data, 0)) || !bytes.Equal(got[2*c.PartSize:], part(u, data, 2)) {
			t.Fatalf("round %d: parts 0 and 2 changed", round)
		}
		mid := got[c.PartSize : 2*c.PartSize]
		if !bytes.Equal(mid, bodies[0]) && !bytes.Equal(mid, bodies[1]) {
			t.Fatalf("round %d: part 1 is neither body: %s", round, describeMix(mid, bodies))
		}
	}
}

// describeMix says which stretches of got come from which body.
func describeMix(got []byte, bodies [][]byte) string {
	var from [2]int
	for i := range got {
		for b := range bodies {
			if got[i] == bodies[b][i] {
				from[b]++
			}
		}
	}
	return fmt.Sprintf("%d of %d bytes match body A, %d body B", from[0], len(got), from[1])
}

// failedRewrite checks that a rewrite of a counted part that fails (short, too long, bad
// checksum) leaves the part counted and intact, and that a completed upload takes no parts.
func failedRewrite(t *testing.T, c BlobStoreOptions) {
	ctx := context.Background()
	s := c.New(t)
	data := random(t, 2*c.PartSize+1000)
	u := newUpload(int64(len(data)), c.PartSize)
	for n := range u.Parts() {
		writePart(t, s, u, data, n)
	}
	other := random(t, c.PartSize+1)
	for name, r := range map[string]io.Reader{
		"short":    bytes.NewReader(other[:c.PartSize-1]),
		"long":     bytes.NewReader(other),
		"checksum": &badSum{b: other[:c.PartSize]},
	} {
		if err := s.WritePart(ctx, u, 0, r); !server.IsCode(err, server.EINVALID) {
			t.Errorf("%s rewrite: %v, want EINVALID", name, err)
		}
	}
	if parts, err := s.Parts(ctx, u); err != nil || !slices.Equal(parts, []int{0, 1, 2}) {
		t.Fatalf("Parts after failed rewrites = %v, %v", parts, err)
	}
	if err := s.CompleteUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, server.BucketVideos, u.ID); !bytes.Equal(got, data) {
		t.Fatal("a failed rewrite changed the file")
	}
	if err := s.WritePart(ctx, u, 0, bytes.NewReader(other[:c.PartSize])); !server.IsCode(err, server.ECONFLICT) {
		t.Errorf("WritePart after completion: %v, want ECONFLICT", err)
	}
	if got := readAll(t, s, server.BucketVideos, u.ID); !bytes.Equal(got, data) {
		t.Fatal("a write after completion changed the file")
	}
}

// failedLastRead checks that a part whose last read fails is not counted.
func failedLastRead(t *testing.T, c BlobStoreOptions) {
	ctx := context.Background()
	s := c.New(t)
	data := random(t, c.PartSize+10)
	u := newUpload(int64(len(data)), c.PartSize)
	for _, n := range []int{0, 1} {
		if err := s.WritePart(ctx, u, n, &badSum{b: part(u, data, n)}); !server.IsCode(err, server.EINVALID) {
			t.Errorf("part %d with a bad checksum: %v, want EINVALID", n, err)
		}
	}
	if parts, err := s.Parts(ctx, u); err != nil || len(parts) != 0 {
		t.Fatalf("Parts = %v, %v, want none", parts, err)
	}
	if err := s.CompleteUpload(ctx, u); !server.IsCode(err, server.ECONFLICT) {
		t.Fatalf("CompleteUpload: %v, want ECONFLICT", err)
	}
}

type failAfter struct {
	r   io.Reader
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, f.err
	}
	return n, err
}

// putFailure checks that a Put whose reader fails at the very end leaves no file.
func putFailure(t *testing.T, c BlobStoreOptions) {
	ctx := context.Background()
	s := c.New(t)
	fid := server.NewID()
	cause := server.Errorf(server.EINVALID, "malformed body")
	_, err := s.Put(ctx, server.BucketVideos, fid, "v.mp4", &failAfter{r: bytes.NewReader(random(t, 3*c.PartSize/2)), err: cause})
	if !errors.Is(err, cause) {
		t.Fatalf("Put from a failing reader: %v, want it to wrap %v", err, cause)
	}
	if _, err := s.Open(ctx, server.BucketVideos, fid); !server.IsCode(err, server.ENOTFOUND) {
		t.Fatalf("Open after a failed Put: %v, want ENOTFOUND", err)
	}
	if l, ok := s.(server.BlobLister); ok {
		if got, err := l.ListBlobs(ctx, server.BucketVideos, "", 100); err != nil || len(got) != 0 {
			t.Fatalf("ListBlobs after a failed Put = %v, %v, want none", got, err)
		}
	}
}

// listBlobs checks the lister: whole files only, in fid order, in pages.
func listBlobs(t *testing.T, c BlobStoreOptions) {
	ctx := context.Background()
	s := c.New(t)
	l, ok := s.(server.BlobLister)
	if !ok {
		t.Fatalf("%T does not implement server.BlobLister", s)
	}
	var want []string
	for i := range 5 {
		fid := server.NewID()
		if _, err := s.Put(ctx, server.BucketMP3s, fid, "a.mp3", bytes.NewReader(make([]byte, i))); err != nil {
			t.Fatal(err)
		}
		want = append(want, fid)
	}
	slices.Sort(want)
	// An upload in progress is no file yet; a completed one is.
	data := random(t, c.PartSize+1)
	open, done := newUpload(int64(len(data)), c.PartSize), newUpload(int64(len(data)), c.PartSize)
	writePart(t, s, open, data, 0)
	writePart(t, s, open, data, 1)
	writePart(t, s, done, data, 0)
	writePart(t, s, done, data, 1)
	if err := s.CompleteUpload(ctx, done); err != nil {
		t.Fatal(err)
	}
	videos, err := l.ListBlobs(ctx, server.BucketVideos, "", 100)
	if err != nil || len(videos) != 1 || videos[0].FID != done.ID || videos[0].Size != done.Size || videos[0].ModTime.IsZero() {
		t.Fatalf("ListBlobs(videos) = %+v, %v, want only %s", videos, err, done.ID)
	}

	var got []string
	after := ""
	for page := 0; ; page++ {
		b, err := l.ListBlobs(ctx, server.BucketMP3s, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 2 {
			t.Fatalf("page %d has %d entries, limit 2", page, len(b))
		}
		if len(b) == 0 {
			break
		}
		for _, e := range b {
			got = append(got, e.FID)
		}
		after = b[len(b)-1].FID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged ListBlobs(mp3s) = %v, want %v", got, want)
	}
	if _, err := l.ListBlobs(ctx, "other", "", 10); err == nil {
		t.Error("ListBlobs of an unknown bucket succeeded")
	}
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.ListBlobs(ctx, server.BucketMP3s, "", 10); err == nil {
		t.Error("ListBlobs with a cancelled context succeeded")
	}
}
