package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// The test binary doubles as the measured command: with BENCHTOOL_TEST_ALLOC_MIB set it
// touches that many MiB and exits with BENCHTOOL_TEST_EXIT.
func TestMain(m *testing.M) {
	if s := os.Getenv("BENCHTOOL_TEST_ALLOC_MIB"); s != "" {
		n, _ := strconv.Atoi(s)
		b := make([]byte, n<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		os.Stdout.WriteString("touched\n")
		runtime.KeepAlive(b)
		code, _ := strconv.Atoi(os.Getenv("BENCHTOOL_TEST_EXIT"))
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func measure(t *testing.T, mib, exit int) (kib int64, stdout string, err error) {
	t.Helper()
	t.Setenv("BENCHTOOL_TEST_ALLOC_MIB", strconv.Itoa(mib))
	t.Setenv("BENCHTOOL_TEST_EXIT", strconv.Itoa(exit))
	var out, res bytes.Buffer
	err = maxRSS(context.Background(), nil, &out, os.Stderr, &res, []string{os.Args[0]})
	line := strings.TrimSpace(res.String())
	v, ok := strings.CutPrefix(line, "maxrss_kib=")
	if !ok {
		t.Fatalf("maxrss printed %q", line)
	}
	kib, perr := strconv.ParseInt(v, 10, 64)
	if perr != nil {
		t.Fatalf("maxrss printed %q", line)
	}
	return kib, out.String(), err
}

func TestMaxRSSMeasuresTheChild(t *testing.T) {
	small, out, err := measure(t, 1, 0)
	if err != nil || out != "touched\n" {
		t.Fatalf("small child: %v, stdout %q", err, out)
	}
	big, _, err := measure(t, 96, 0)
	if err != nil {
		t.Fatal(err)
	}
	if big < 96<<10 || big < small+80<<10 {
		t.Errorf("a child that touched 96 MiB peaked at %d KiB (one that touched 1 MiB: %d KiB)", big, small)
	}

	// A failing command still gets its figure, and its exit code comes back.
	_, _, err = measure(t, 1, 3)
	var ec *exitCodeError
	if !errors.As(err, &ec) || ec.code != 3 {
		t.Errorf("a child exiting 3 gave %v", err)
	}
	if err := maxRSS(context.Background(), nil, nil, nil, &bytes.Buffer{}, []string{"/nonexistent/cmd"}); err == nil {
		t.Error("a missing command gave no error")
	}
}
