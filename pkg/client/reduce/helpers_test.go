package reduce

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// needFFmpeg skips the test when ffmpeg or ffprobe is missing, and fails it under CI=true.
func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required under CI: %v", tool, err)
			}
			t.Skipf("no %s: %v", tool, err)
		}
	}
}

// run runs name with args and returns its standard output; a failure fails the test with its stderr.
func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// openSource opens path for the test's duration and returns its size.
func openSource(t testing.TB, path string) (*os.File, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return f, st.Size()
}

// reduceFile reduces src with reduce and writes the reduced file next to it, as
// NAME.reduced.EXT.
func reduceFile(t testing.TB, src string, reduce func(context.Context, io.ReaderAt, int64) (*Layout, error)) (string, *Layout) {
	t.Helper()
	f, size := openSource(t, src)
	l, err := reduce(context.Background(), f, size)
	if err != nil {
		t.Fatalf("reduce %s: %v", filepath.Base(src), err)
	}
	dst := strings.TrimSuffix(src, filepath.Ext(src)) + ".reduced" + filepath.Ext(src)
	writeLayout(t, l, f, dst)
	return dst, l
}
