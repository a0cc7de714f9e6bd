package server

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestUploadParts(t *testing.T) {
	for _, tc := range []struct {
		size, part int64
		parts      int
		last       int64
	}{
		{0, 8, 1, 0}, {1, 8, 1, 1}, {8, 8, 1, 8}, {9, 8, 2, 1}, {16, 8, 2, 8}, {17, 8, 3, 1},
	} {
		u := &Upload{Size: tc.size, PartSize: tc.part}
		if u.Parts() != tc.parts || u.PartLen(tc.parts-1) != tc.last {
			t.Errorf("size %d part %d: %d parts, last %d; want %d, %d", tc.size, tc.part, u.Parts(), u.PartLen(tc.parts-1), tc.parts, tc.last)
		}
		if u.PartLen(-1) != -1 || u.PartLen(tc.parts) != -1 {
			t.Errorf("size %d: out-of-range parts have a length", tc.size)
		}
		var sum int64
		for n := range u.Parts() {
			sum += u.PartLen(n)
		}
		if sum != tc.size {
			t.Errorf("size %d: parts add up to %d", tc.size, sum)
		}
	}
}

func TestErrors(t *testing.T) {
	e := fmt.Errorf("wrapped: %w", Errorf(ENOTFOUND, "job %s not found", "x"))
	if ErrorCode(e) != ENOTFOUND || ErrorMessage(e) != "job x not found" || !IsCode(e, ENOTFOUND) {
		t.Fatalf("code %q message %q", ErrorCode(e), ErrorMessage(e))
	}
	plain := errors.New("dial tcp: refused")
	if ErrorCode(plain) != EINTERNAL || ErrorMessage(plain) != "internal error" {
		t.Fatal("a plain error must read as internal, without its details")
	}
	if ErrorCode(nil) != "" || ErrorMessage(nil) != "" {
		t.Fatal("nil error has a code")
	}
	p := Permanent(fmt.Errorf("convert: %w", Errorf(EINVALID, "no audio")))
	if !IsPermanent(p) || !IsPermanent(fmt.Errorf("ctx: %w", p)) || ErrorMessage(p) != "no audio" {
		t.Fatal("Permanent lost its mark or its message")
	}
	if IsPermanent(plain) || Permanent(nil) != nil {
		t.Fatal("unmarked error is permanent")
	}
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if !ValidID(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "../../etc/passwd", "65A1B2C3D4E5F60718293A4B", "65a1b2c3d4e5f60718293a4", "65a1b2c3d4e5f60718293a4bz"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q)", bad)
		}
	}
}

func TestEventFor(t *testing.T) {
	j := &Job{ID: "j", Owner: "a@x.io", State: JobDone, MP3FID: "m", Error: "stale", Filename: "v.mp4"}
	if e := EventFor(j); e.MP3FID != "m" || e.Error != "" || e.Username != "a@x.io" {
		t.Fatalf("done event %+v", e)
	}
	j.State = JobFailed
	if e := EventFor(j); e.MP3FID != "" || e.Error != "stale" {
		t.Fatalf("failed event %+v", e)
	}
}

func TestDefaultBackoff(t *testing.T) {
	for attempt, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second,
		9: 256 * time.Second, 10: MaxBackoff, 50: MaxBackoff, 1 << 30: MaxBackoff} {
		for range 20 {
			if got := DefaultBackoff(attempt); got > want || got < want*3/4 {
				t.Fatalf("DefaultBackoff(%d) = %v, want within [%v, %v]", attempt, got, want*3/4, want)
			}
		}
	}
	var total time.Duration
	for a := 1; a < DefaultMailAttempts; a++ {
		total += DefaultBackoff(a)
	}
	if total < 40*time.Minute || total > 80*time.Minute {
		t.Errorf("a mail is retried for %v, want about an hour", total)
	}
}
