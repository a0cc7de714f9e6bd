package client_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/v2m/v2m/pkg/client"
)

// TestDownloadFileNoClobber: with NoClobber a file at dst is not replaced, and nothing is
// fetched; without it, it is.
func TestDownloadFileNoClobber(t *testing.T) {
	data := randomBytes(50_000)
	s, c := mp3Server(t, data)
	fid := converted(t, c).MP3FID
	dst := filepath.Join(t.TempDir(), "talk.mp3")
	if err := os.WriteFile(dst, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err := c.DownloadFile(ctx, fid, dst, client.DownloadOptions{NoClobber: true})
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("NoClobber onto a file: %v, want fs.ErrExist", err)
	}
	assertFile(t, dst, []byte("mine"))
	if n := len(s.Requests(fileRoute)); n != 0 {
		t.Fatalf("%d downloads before refusing", n)
	}
	if err := c.DownloadFile(ctx, fid, filepath.Dir(dst), client.DownloadOptions{}); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("onto a directory: %v", err)
	}
	if err := c.DownloadFile(ctx, fid, dst, client.DownloadOptions{}); err != nil {
		t.Fatal(err)
	}
	assertFile(t, dst, data)
	assertGone(t, dst+".part", dst+".part.etag")
}

// TestDownloadStream: a file is written whole to a writer, with progress.
func TestDownloadStream(t *testing.T) {
	data := randomBytes(120_000)
	_, c := mp3Server(t, data)
	fid := converted(t, c).MP3FID
	var buf bytes.Buffer
	var last int64
	n, err := c.DownloadStream(context.Background(), fid, &buf, func(done, total int64) {
		if total != int64(len(data)) {
			t.Errorf("total %d", total)
		}
		last = done
	})
	if err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) || last != n {
		t.Fatalf("streamed %d bytes (progress %d), %v", n, last, err)
	}
	if _, err := c.DownloadStream(context.Background(), "nosuchfile", &buf, nil); !client.IsNotFound(err) {
		t.Fatalf("no such file: %v", err)
	}
}
