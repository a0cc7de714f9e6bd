package throttle

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestParseFormatRate(t *testing.T) {
	for in, want := range map[string]rate.Limit{
		"10/m": rate.Limit(10.0 / 60), "1/s": 1, "3/h": rate.Limit(3.0 / 3600), "0.5/s": 0.5, " 2 / minute ": rate.Limit(2.0 / 60),
		"off": rate.Inf, "0": rate.Inf,
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"10", "x/m", "-1/m", "10/d", "1/", "inf/s", "NaN/s"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
	for _, in := range []string{"10/m", "1/s", "3/h", "off", "30/m"} {
		r, _ := ParseRate(in)
		if got := FormatRate(r); got != in {
			t.Errorf("FormatRate(ParseRate(%q)) = %q", in, got)
		}
	}
}

// fakeClock drives a Policy's time in tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestPolicyBurstThenRate(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	p := NewPolicy(NewStore(Limit{Rate: rate.Every(6 * time.Second), Burst: 5}, 0))
	p.now = clk.now
	for i := range 5 {
		if d := p.Allow("a"); d != 0 {
			t.Fatalf("attempt %d refused within the burst (retry after %v)", i+1, d)
		}
	}
	d := p.Allow("a")
	if d <= 0 || d > 6*time.Second {
		t.Fatalf("attempt past the burst: retry after %v, want (0, 6s]", d)
	}
	// Refused attempts take nothing: retrying exactly after Retry-After succeeds.
	for range 50 {
		p.Allow("a")
	}
	clk.t = clk.t.Add(d)
	if d := p.Allow("a"); d != 0 {
		t.Fatalf("refused after waiting Retry-After: %v", d)
	}
	// Another key has its own bucket.
	if d := p.Allow("b"); d != 0 {
		t.Fatalf("another key refused: %v", d)
	}
}

func TestPolicyAllKeysMustAllow(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	email := NewStore(Limit{Rate: rate.Every(time.Minute), Burst: 3}, 0)
	ip := NewStore(Limit{Rate: rate.Every(time.Minute), Burst: 5}, 0)
	p := NewPolicy(email, ip)
	p.now = clk.now
	// Per IP across many emails: the sixth email from one IP is refused.
	for i := range 5 {
		if d := p.Allow(fmt.Sprintf("u%d@example.com", i), "192.0.2.1"); d != 0 {
			t.Fatalf("email %d refused: %v", i, d)
		}
	}
	if d := p.Allow("u9@example.com", "192.0.2.1"); d <= 0 {
		t.Fatal("sixth email from one IP allowed")
	}
	// The refusal by IP took no token from the new email's bucket.
	for i := range 3 {
		if d := p.Allow("u9@example.com", fmt.Sprintf("198.51.100.%d", i)); d != 0 {
			t.Fatalf("u9 from another IP refused at %d: %v", i, d)
		}
	}
	if d := p.Allow("u9@example.com", "198.51.100.200"); d <= 0 {
		t.Fatal("fourth attempt on one email allowed")
	}
	// Off limits and nil stores let everything through.
	open := NewPolicy(nil, NewStore(Limit{Rate: rate.Inf, Burst: 1}, 0))
	for range 100 {
		if open.Allow("x", "y") != 0 {
			t.Fatal("an unlimited policy refused")
		}
	}
	var none *Policy
	if none.Allow("x") != 0 {
		t.Fatal("a nil policy refused")
	}
}

func TestStoreIsBoundedAndForgetsIdleKeys(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s := NewStore(Limit{Rate: rate.Every(time.Second), Burst: 10}, 100)
	p := NewPolicy(s)
	p.now = clk.now
	for i := range 1000 {
		p.Allow(fmt.Sprint(i))
	}
	if n := s.Len(); n != 100 {
		t.Fatalf("store holds %d keys, want its bound 100", n)
	}
	// After a full refill (10 s), every key is like new and is forgotten on the next use.
	clk.t = clk.t.Add(10 * time.Second)
	p.Allow("new")
	if n := s.Len(); n != 1 {
		t.Fatalf("store holds %d keys after they all went idle, want 1", n)
	}
	// A key still refilling is kept.
	for range 10 {
		p.Allow("busy")
	}
	clk.t = clk.t.Add(5 * time.Second)
	p.Allow("other")
	if d := p.Allow("busy"); d != 0 {
		t.Fatalf("busy after 5 s refill: %v", d)
	}
	if n := s.Len(); n != 3 {
		t.Fatalf("store holds %d keys, want 3 (new, busy, other)", n)
	}
}
