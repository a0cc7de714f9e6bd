package client_test

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/v2m/v2m/pkg/client"
	"github.com/v2m/v2m/pkg/server/api"
	"github.com/v2m/v2m/pkg/server/auth"
	"github.com/v2m/v2m/pkg/server/disk"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/server/token"
)

// TestUploadSendsPartChecksums: against the real API server (SQLite and disk behind it), every
// part the client sends carries the CRC-32C of exactly the bytes it sends, so the server can
// refuse a part corrupted on the way.
func TestUploadSendsPartChecksums(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "v2m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := token.GenerateEd25519PEM()
	k, _ := token.ParseKey(token.EdDSA, pem)
	h := api.New(api.Config{
		Accounts: &auth.Service{Users: db.Users(), Tokens: &token.Issuer{Key: k, Issuer: "v2m"}, Cost: bcrypt.MinCost},
		Verifier: &token.Verifier{Alg: token.EdDSA, Issuer: "v2m", Keys: token.StaticKeys{k}},
		Service: &jobs.Service{Jobs: db.Jobs(), Uploads: db.Uploads(), Blobs: blobs, Queue: db.Queue(sqlite.QueueConfig{}),
			PartSize: 1000, MaxUploadSize: 1 << 20},
	})
	var mu sync.Mutex
	var bad []string
	puts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/parts/") {
			body, _ := io.ReadAll(r.Body)
			want := fmt.Sprintf("%08x", crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
			mu.Lock()
			puts++
			if got := r.Header.Get("X-Part-CRC32C"); got != want {
				bad = append(bad, r.URL.Path+": X-Part-CRC32C "+strconv.Quote(got)+", the body's is "+want)
			}
			mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	c, err := client.New(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, "a@example.com", "password1"); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Login(ctx, "a@example.com", "password1")
	if err != nil {
		t.Fatal(err)
	}
	c, _ = client.New(srv.URL+"/", client.WithToken(tok.Token))
	path, data := writeFile(t, 7*1000+1)
	job, err := c.Upload(ctx, path, client.UploadOptions{Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	if puts != 8 || len(bad) > 0 {
		t.Fatalf("%d PUTs; without the right checksum: %v", puts, bad)
	}
	v, err := blobs.Open(ctx, "videos", job.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got, _ := io.ReadAll(v); !bytes.Equal(got, data) {
		t.Fatal("the server stored other bytes than the file's")
	}
}
