package servertest

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/v2m/v2m/pkg/server"
)

// NewUserStore returns a fresh, empty UserStore.
type NewUserStore func(t *testing.T) server.UserStore

// TestUserStore checks a UserStore against the contract of server.UserStore.
func TestUserStore(t *testing.T, newStore NewUserStore) {
	t.Run("CreateAndGet", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		hash := []byte("$2a$10$abcdefghijklmnopqrstuv")
		u, err := s.CreateUser(ctx, "Ann@Example.com", hash)
		if err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		if u.ID <= 0 || u.Email != "Ann@Example.com" || !bytes.Equal(u.PasswordHash, hash) || u.CreatedAt.IsZero() {
			t.Fatalf("CreateUser returned %+v", u)
		}
		for _, email := range []string{"Ann@Example.com", "ann@example.com", "ANN@EXAMPLE.COM"} {
			got, err := s.UserByEmail(ctx, email)
			if err != nil {
				t.Fatalf("UserByEmail(%s): %v", email, err)
			}
			if got.ID != u.ID || got.Email != u.Email || !bytes.Equal(got.PasswordHash, hash) || !got.CreatedAt.Equal(u.CreatedAt) {
				t.Fatalf("UserByEmail(%s) = %+v, want %+v", email, got, u)
			}
		}
		b, err := s.CreateUser(ctx, "bob@example.com", hash)
		if err != nil || b.ID == u.ID {
			t.Fatalf("second user = %+v, %v; want another id", b, err)
		}
	})
	t.Run("DuplicateEmailAnyCase", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		if _, err := s.CreateUser(ctx, "ann@example.com", []byte("first")); err != nil {
			t.Fatal(err)
		}
		for _, email := range []string{"ann@example.com", "Ann@Example.COM"} {
			_, err := s.CreateUser(ctx, email, []byte("second"))
			wantCode(t, "CreateUser("+email+") again", err, server.ECONFLICT)
		}
		u, err := s.UserByEmail(ctx, "ann@example.com")
		if err != nil || string(u.PasswordHash) != "first" {
			t.Fatalf("first user changed: %+v, %v", u, err)
		}
	})
	t.Run("DuplicateEmailRace", func(t *testing.T) {
		s := newStore(t)
		const n = 6
		won := race(t, "CreateUser", n, func(i int) error {
			email := "ann@example.com"
			if i%2 == 1 {
				email = strings.ToUpper(email)
			}
			_, err := s.CreateUser(context.Background(), email, []byte("h"))
			return err
		})
		if won != 1 {
			t.Errorf("%d of %d concurrent CreateUser of one email won, want 1", won, n)
		}
	})
	t.Run("Missing", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		if _, err := s.CreateUser(ctx, "ann@example.com", []byte("h")); err != nil {
			t.Fatal(err)
		}
		_, err := s.UserByEmail(ctx, "bob@example.com")
		wantCode(t, "UserByEmail of an unknown email", err, server.ENOTFOUND)
	})
}
