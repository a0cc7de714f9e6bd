package ffmpeg_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/ffmpeg"
)

// TestPlaylistCannotFetchURLs: an uploaded HLS playlist (under a video's name) must not make
// ffmpeg or ffprobe fetch the URLs it lists.
func TestPlaylistCannotFetchURLs(t *testing.T) {
	var hits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	}))
	defer internal.Close()
	dir := t.TempDir()
	src := filepath.Join(dir, "talk.m3u8") // the worker keeps the extension the user gave
	playlist := fmt.Sprintf("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n%s/secret/seg0.ts\n#EXT-X-ENDLIST\n", internal.URL)
	if err := os.WriteFile(src, []byte(playlist), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newConverter(t, ffmpeg.Config{})
	err := c.Convert(context.Background(), src, filepath.Join(dir, "out.mp3"), server.Conversion{}, func(int) {})
	if err == nil || !server.IsPermanent(err) {
		t.Fatalf("Convert of a playlist = %v, want a permanent error", err)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("ffmpeg fetched %d URLs listed in an upload", n)
	}
}
