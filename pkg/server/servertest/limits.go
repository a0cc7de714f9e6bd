package servertest

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// TestLimitStore checks a LimitStore against the contract of server.LimitStore.
func TestLimitStore(t *testing.T, newStore func(t *testing.T) server.LimitStore) {
	i64 := func(v int64) *int64 { return &v }
	num := func(v int) *int { return &v }
	dur := func(v time.Duration) *time.Duration { return &v }
	t.Run("NoneSetIsDefaults", func(t *testing.T) {
		l, err := newStore(t).UserLimits(t.Context(), "ann@example.com")
		if err != nil || !reflect.DeepEqual(l, server.Limits{}) {
			t.Fatalf("UserLimits of a user without limits = %+v, %v; want the zero Limits", l, err)
		}
	})
	t.Run("SetReplacesAndIgnoresCase", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		all := server.Limits{QuotaBytes: i64(5 << 30), MaxOpenUploads: num(0), MaxActiveJobs: num(3), MaxDuration: dur(90*time.Minute + 1500*time.Millisecond)}
		if err := s.SetUserLimits(ctx, "Ann@Example.com", all); err != nil {
			t.Fatal(err)
		}
		if l, err := s.UserLimits(ctx, "ann@example.com"); err != nil || !reflect.DeepEqual(l, all) {
			t.Fatalf("UserLimits = %s, %v; want %s", fmtLimits(l), err, fmtLimits(all))
		}
		some := server.Limits{MaxActiveJobs: num(1)}
		if err := s.SetUserLimits(ctx, "ann@example.com", some); err != nil {
			t.Fatal(err)
		}
		if l, err := s.UserLimits(ctx, "ANN@example.com"); err != nil || !reflect.DeepEqual(l, some) {
			t.Fatalf("UserLimits after a replace = %s, %v; want %s", fmtLimits(l), err, fmtLimits(some))
		}
		if l, err := s.UserLimits(ctx, "bob@example.com"); err != nil || !reflect.DeepEqual(l, server.Limits{}) {
			t.Fatalf("another user's limits = %s, %v", fmtLimits(l), err)
		}
	})
}

func fmtLimits(l server.Limits) string {
	out := "{"
	if l.QuotaBytes != nil {
		out += fmt.Sprintf(" quota %d", *l.QuotaBytes)
	}
	if l.MaxOpenUploads != nil {
		out += fmt.Sprintf(" uploads %d", *l.MaxOpenUploads)
	}
	if l.MaxActiveJobs != nil {
		out += fmt.Sprintf(" jobs %d", *l.MaxActiveJobs)
	}
	if l.MaxDuration != nil {
		out += " duration " + l.MaxDuration.String()
	}
	return out + " }"
}

// TestLease checks a Lease against the contract of server.Lease. now moves the store's clock.
func TestLease(t *testing.T, newLease func(t *testing.T, now func() time.Time) server.Lease) {
	t.Run("OneHolderUntilExpiry", func(t *testing.T) {
		c := NewClock()
		ctx, l := t.Context(), newLease(t, c.Now)
		acquire := func(holder string, want bool) {
			t.Helper()
			ok, err := l.Acquire(ctx, "janitor", holder, time.Minute)
			if err != nil || ok != want {
				t.Fatalf("Acquire(%s) = %v, %v; want %v", holder, ok, err, want)
			}
		}
		acquire("a", true)
		acquire("b", false)
		c.Advance(50 * time.Second)
		acquire("a", true) // renewed until 110 s
		c.Advance(30 * time.Second)
		acquire("b", false)
		c.Advance(31 * time.Second)
		acquire("b", true) // a's expired
		acquire("a", false)
		if ok, err := l.Acquire(ctx, "other", "a", time.Minute); err != nil || !ok {
			t.Fatalf("another lease name = %v, %v", ok, err)
		}
	})
	t.Run("RaceHasOneWinner", func(t *testing.T) {
		c := NewClock()
		l := newLease(t, c.Now)
		var mu sync.Mutex
		won := 0
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				ok, err := l.Acquire(t.Context(), "race", string(rune('a'+i)), time.Minute)
				if err != nil {
					t.Errorf("Acquire: %v", err)
				}
				if ok {
					mu.Lock()
					won++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("%d of 6 concurrent holders got the lease, want 1", won)
		}
	})
}
