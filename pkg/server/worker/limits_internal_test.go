package worker

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/sqlite"
)

func openDB(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "v2m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestMaxDurationPerUser: a user's own limit replaces the converter's, also when it lifts it
// (0), and users without one get the converter's.
func TestMaxDurationPerUser(t *testing.T) {
	db := openDB(t)
	short, none := 30*time.Minute, time.Duration(0)
	if err := db.Limits().SetUserLimits(t.Context(), "ann@example.com", server.Limits{MaxDuration: &short}); err != nil {
		t.Fatal(err)
	}
	if err := db.Limits().SetUserLimits(t.Context(), "cat@example.com", server.Limits{MaxDuration: &none}); err != nil {
		t.Fatal(err)
	}
	w := &Converter{MaxDuration: 2 * time.Hour, Limits: db.Limits()}
	for owner, want := range map[string]time.Duration{"ann@example.com": short, "bob@example.com": 2 * time.Hour, "cat@example.com": 0} {
		if got := w.maxDuration(t.Context(), &server.Job{ID: "j", Owner: owner}); got != want {
			t.Errorf("max duration of %s = %v, want %v", owner, got, want)
		}
	}
}

// TestJanitorLease: of two sweepers sharing a lease, only the holder may delete; the other
// takes over once the holder's lease has run out (here, renewed with a time to live already
// past, as a holder that stopped leaves it); a sweeper without a lease (standalone) always may.
func TestJanitorLease(t *testing.T) {
	db := openDB(t)
	a, b := &Sweeper{Lease: db.Lease(), Holder: "a"}, &Sweeper{Lease: db.Lease(), Holder: "b"}
	const ttl = time.Hour
	if !a.janitor(t.Context(), ttl) || b.janitor(t.Context(), ttl) || !a.janitor(t.Context(), ttl) {
		t.Fatal("a holds the lease and renews it; b may not delete meanwhile")
	}
	if !a.janitor(t.Context(), -time.Second) {
		t.Fatal("a cannot renew its own lease")
	}
	if !b.janitor(t.Context(), ttl) || a.janitor(t.Context(), ttl) {
		t.Fatal("b does not take over a lease that ran out, or a keeps it")
	}
	if !(&Sweeper{}).janitor(t.Context(), ttl) {
		t.Fatal("a sweeper without a lease may not delete")
	}
}
