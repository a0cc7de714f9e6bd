package ffmpeg_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testmedia"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/ffmpeg"
)

// TestMaxDuration: audio longer than the conversion's MaxDuration fails before anything is
// encoded, permanently, naming both durations; a limit the audio fits in converts it, and so
// does a trim that brings a long input within the limit.
func TestMaxDuration(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	s := testmedia.Good[1] // 3 s
	src := media(t, s)
	dst := filepath.Join(t.TempDir(), "out.mp3")
	var pcts []int
	err := c.Convert(t.Context(), src, dst, server.Conversion{MaxDuration: 2 * time.Second}, func(p int) { pcts = append(pcts, p) })
	if !server.IsPermanent(err) || !server.IsCode(err, server.ETOOLARGE) {
		t.Fatalf("a 3 s video under a 2 s limit: %v, want a permanent %s", err, server.ETOOLARGE)
	}
	if msg := server.ErrorMessage(err); !strings.Contains(msg, "lasts 3s") || !strings.Contains(msg, "at most 2s") {
		t.Errorf("message %q does not name both durations", msg)
	}
	if _, statErr := os.Stat(dst); statErr == nil || len(pcts) > 0 {
		t.Errorf("something was encoded: dst %v, progress %v", statErr, pcts)
	}
	if err := c.Convert(t.Context(), src, dst, server.Conversion{MaxDuration: 5 * time.Second}, nil); err != nil {
		t.Fatalf("a 3 s video under a 5 s limit: %v", err)
	}
	trim := server.Conversion{MaxDuration: 2 * time.Second, Options: server.JobOptions{End: 1500 * time.Millisecond}}
	if err := c.Convert(t.Context(), src, filepath.Join(t.TempDir(), "trim.mp3"), trim, nil); err != nil {
		t.Fatalf("1.5 s of a 3 s video under a 2 s limit: %v", err)
	}
}
