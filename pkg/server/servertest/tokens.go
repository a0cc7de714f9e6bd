package servertest

import (
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// TestPersonalTokenStore checks a PersonalTokenStore against the contract of
// server.PersonalTokenStore. newStore returns a fresh, empty store.
func TestPersonalTokenStore(t *testing.T, newStore func(t *testing.T) server.PersonalTokenStore) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	tok := func(owner, name string, created time.Time) *server.PersonalToken {
		return &server.PersonalToken{ID: server.NewID(), Owner: owner, Name: name, Hash: strings.Repeat(server.NewID()[:16], 4),
			CreatedAt: created, ExpiresAt: created.Add(time.Hour)}
	}
	same := func(a, b *server.PersonalToken) bool {
		return a.ID == b.ID && strings.EqualFold(a.Owner, b.Owner) && a.Name == b.Name && a.Hash == b.Hash && a.ReadOnly == b.ReadOnly &&
			a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt) && a.LastUsedAt.Equal(b.LastUsedAt)
	}
	t.Run("CreateAndFind", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		a := tok("Ann@Example.com", "ci 🚀", now)
		a.ReadOnly = true
		if err := s.CreatePersonalToken(ctx, a); err != nil {
			t.Fatalf("CreatePersonalToken: %v", err)
		}
		got, err := s.PersonalTokenByHash(ctx, a.Hash)
		if err != nil || !same(got, a) || !got.LastUsedAt.IsZero() {
			t.Fatalf("PersonalTokenByHash = %+v, %v; want %+v", got, err, a)
		}
		_, err = s.PersonalTokenByHash(ctx, strings.Repeat("0", 64))
		wantCode(t, "PersonalTokenByHash of an unknown hash", err, server.ENOTFOUND)
		dupID := tok("ann@example.com", "again", now)
		dupID.ID = a.ID
		wantCode(t, "CreatePersonalToken with an existing id", s.CreatePersonalToken(ctx, dupID), server.ECONFLICT)
		dupHash := tok("bob@example.com", "again", now)
		dupHash.Hash = a.Hash
		wantCode(t, "CreatePersonalToken with an existing hash", s.CreatePersonalToken(ctx, dupHash), server.ECONFLICT)
		if got, err := s.PersonalTokenByHash(ctx, a.Hash); err != nil || !same(got, a) {
			t.Fatalf("token changed by the refused creations: %+v, %v", got, err)
		}
	})
	t.Run("ListOwnersOnly", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		if list, err := s.PersonalTokens(ctx, "ann@example.com"); err != nil || len(list) != 0 {
			t.Fatalf("PersonalTokens of nobody = %v, %v", list, err)
		}
		old, mid, young := tok("ann@example.com", "old", now.Add(-2*time.Hour)), tok("Ann@example.com", "mid", now.Add(-time.Hour)), tok("ann@example.com", "young", now)
		bob := tok("bob@example.com", "bob's", now)
		for _, x := range []*server.PersonalToken{mid, bob, young, old} {
			if err := s.CreatePersonalToken(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		list, err := s.PersonalTokens(ctx, "ANN@example.com")
		if err != nil || len(list) != 3 || !same(list[0], young) || !same(list[1], mid) || !same(list[2], old) {
			t.Fatalf("PersonalTokens(ann) = %v, %v; want young, mid, old", list, err)
		}
	})
	t.Run("DeleteAndTouch", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		a, b := tok("ann@example.com", "a", now), tok("bob@example.com", "b", now)
		for _, x := range []*server.PersonalToken{a, b} {
			if err := s.CreatePersonalToken(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		used := now.Add(time.Minute)
		if err := s.TouchPersonalToken(ctx, a.ID, used); err != nil {
			t.Fatalf("TouchPersonalToken: %v", err)
		}
		if got, err := s.PersonalTokenByHash(ctx, a.Hash); err != nil || !got.LastUsedAt.Equal(used) {
			t.Fatalf("after TouchPersonalToken: %+v, %v; want last used %v", got, err, used)
		}
		if err := s.TouchPersonalToken(ctx, server.NewID(), used); err != nil {
			t.Fatalf("TouchPersonalToken of a missing token: %v", err)
		}
		wantCode(t, "DeletePersonalToken of someone else's token", s.DeletePersonalToken(ctx, "ann@example.com", b.ID), server.ENOTFOUND)
		if _, err := s.PersonalTokenByHash(ctx, b.Hash); err != nil {
			t.Fatalf("bob's token after ann tried to delete it: %v", err)
		}
		if err := s.DeletePersonalToken(ctx, "Ann@Example.com", a.ID); err != nil {
			t.Fatalf("DeletePersonalToken: %v", err)
		}
		_, err := s.PersonalTokenByHash(ctx, a.Hash)
		wantCode(t, "PersonalTokenByHash of a deleted token", err, server.ENOTFOUND)
		wantCode(t, "DeletePersonalToken again", s.DeletePersonalToken(ctx, "ann@example.com", a.ID), server.ENOTFOUND)
	})
}
