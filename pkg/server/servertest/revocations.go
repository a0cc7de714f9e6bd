package servertest

import (
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// TestRevocationStore checks the documented behaviour of a server.RevocationStore: revoking,
// revoking twice, past expiries, listing, purging on Revoke, and the empty jti.
func TestRevocationStore(t *testing.T, newStore func(t *testing.T) server.RevocationStore) {
	s := newStore(t)
	t.Helper()
	ctx := t.Context()
	now := time.Now()
	a, b, past := server.NewID(), server.NewID(), server.NewID()

	if ok, err := s.Revoked(ctx, a); err != nil || ok {
		t.Fatalf("Revoked(never revoked) = %v, %v; want false", ok, err)
	}
	if err := s.Revoke(ctx, a, now.Add(time.Hour)); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if ok, err := s.Revoked(ctx, a); err != nil || !ok {
		t.Fatalf("Revoked(revoked) = %v, %v; want true", ok, err)
	}
	// Twice is fine, and the later expiry wins whatever the order.
	if err := s.Revoke(ctx, a, now.Add(2*time.Hour)); err != nil {
		t.Fatalf("Revoke again: %v", err)
	}
	if err := s.Revoke(ctx, a, now.Add(30*time.Minute)); err != nil {
		t.Fatalf("Revoke again with an earlier expiry: %v", err)
	}
	if err := s.Revoke(ctx, b, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// An expiry already past stores nothing to list: the token is refused anyway.
	if err := s.Revoke(ctx, past, now.Add(-time.Minute)); err != nil {
		t.Fatalf("Revoke(expired): %v", err)
	}
	if err := s.Revoke(ctx, "", now.Add(time.Hour)); !server.IsCode(err, server.EINVALID) {
		t.Fatalf("Revoke(\"\") = %v, want %s", err, server.EINVALID)
	}

	list := func(at time.Time) map[string]time.Time {
		t.Helper()
		l, err := s.Revocations(ctx, at)
		if err != nil {
			t.Fatalf("Revocations: %v", err)
		}
		m := map[string]time.Time{}
		for _, r := range l {
			m[r.ID] = r.ExpiresAt
		}
		return m
	}
	got := list(now)
	if exp, ok := got[a]; !ok || exp.Sub(now.Add(2*time.Hour)).Abs() > time.Millisecond {
		t.Fatalf("revocation of a = %v (listed %v), want expiry %v", exp, ok, now.Add(2*time.Hour))
	}
	if _, ok := got[b]; !ok {
		t.Fatal("revocation of b not listed")
	}
	if _, ok := got[past]; ok {
		t.Fatal("a revocation whose expiry is past is listed")
	}
	later := list(now.Add(90 * time.Minute))
	if _, ok := later[b]; ok {
		t.Fatal("listed at a time after its expiry")
	}
	if _, ok := later[a]; !ok {
		t.Fatal("not listed before its expiry")
	}

	// Revoke purges what has expired: a revocation that expires soon is gone after it has.
	soon := server.NewID()
	if err := s.Revoke(ctx, soon, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := s.Revoke(ctx, server.NewID(), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		ok, err := s.Revoked(ctx, soon)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an expired revocation was not purged by later Revoke calls")
		}
		time.Sleep(200 * time.Millisecond) // polling for the expiry to pass
	}
	if ok, err := s.Revoked(ctx, a); err != nil || !ok {
		t.Fatalf("the purge removed an unexpired revocation: %v %v", ok, err)
	}
}
