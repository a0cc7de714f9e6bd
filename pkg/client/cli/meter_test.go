package cli

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// TestMeterCountsThisRunOnly: a resumed transfer's rate counts only the bytes sent since it
// resumed, and sizes are in binary units, as the step lines' are.
func TestMeterCountsThisRunOnly(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	now := t0
	m := &meter{base: 9 << 20, start: t0, now: func() time.Time { return now }}
	if got := m.text(9<<20, 10<<20); got != "9.0 MiB / 10.0 MiB" {
		t.Fatalf("at the start: %q", got)
	}
	now = t0.Add(2 * time.Second)
	if got, want := m.text(10<<20, 10<<20), "10.0 MiB / 10.0 MiB, 512.0 KiB/s"; got != want {
		t.Fatalf("after 1 MiB in 2 s: %q, want %q (not the 5 MiB/s of the whole file)", got, want)
	}
	if got := humanBytes(1500); got != "1.5 KiB" {
		t.Fatalf("humanBytes(1500) = %q", got)
	}
}

// TestResumeCommand: the command that resumes an upload is the command as it was run, with the
// flags that were set, for the files named, quoted for a shell.
func TestResumeCommand(t *testing.T) {
	o := wantOK(t, parse(t, testEnv{}, newCmdUpload, "upload", "a.mp4", "--normalize", "--bitrate", "128k", "--json", "-o", "out/"))
	if got, want := o.Send.Resume("-my talk.mp4"), "v2m upload --bitrate=128k --json --normalize --output=out/ -- '-my talk.mp4'"; got != want {
		t.Fatalf("resume command\n%s\nwant\n%s", got, want)
	}
}

func TestShellQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain/path.mp4", "plain/path.mp4"},
		{"my talk.mp4", "'my talk.mp4'"},
		{"it's.mp4", `'it'\''s.mp4'`},
		{"", "''"},
	} {
		if got := shellQuote(tc.in); got != tc.want {
			t.Errorf("shellQuote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestReadSecret: what the password prompt makes of the keys typed in raw mode.
func TestReadSecret(t *testing.T) {
	for _, tc := range []struct{ typed, want string }{
		{"password1\r", "password1"},
		{"pa\x7fassword\n", "password"},
		{"wrong\x15right\r", "right"},
		{"pässwörd\x08\x7fd\r", "pässwöd"},
		{"no enter", "no enter"},
	} {
		got, err := readSecret(strings.NewReader(tc.typed))
		if err != nil || string(got) != tc.want {
			t.Errorf("typed %q: %q, %v; want %q", tc.typed, got, err, tc.want)
		}
	}
	if _, err := readSecret(strings.NewReader("secr\x03et\r")); exitCode(err) != ExitInterrupted {
		t.Errorf("Ctrl-C: %v (exit %d), want exit 130", err, exitCode(err))
	}
	if _, err := readSecret(strings.NewReader("\x04")); !errors.Is(err, io.EOF) {
		t.Errorf("Ctrl-D: %v", err)
	}
}
