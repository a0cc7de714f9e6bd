package servertest

import (
	"bytes"
	"context"
	"fmt"
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
	t.Run("RoleAndDisabled", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		u, err := s.CreateUser(ctx, "Ann@Example.com", []byte("h"))
		if err != nil || u.Role != server.RoleUser || u.Disabled {
			t.Fatalf("new user = %+v, %v; want role user, enabled", u, err)
		}
		got, err := s.SetRole(ctx, "ann@example.com", server.RoleAdmin)
		if err != nil || got.ID != u.ID || got.Role != server.RoleAdmin || got.Disabled {
			t.Fatalf("SetRole(admin) = %+v, %v", got, err)
		}
		if got, err = s.SetRole(ctx, "ANN@example.com", server.RoleAdmin); err != nil || got.Role != server.RoleAdmin {
			t.Fatalf("SetRole(admin) again = %+v, %v", got, err)
		}
		_, err = s.SetRole(ctx, "ann@example.com", "root")
		wantCode(t, "SetRole(root)", err, server.EINVALID)
		if got, err = s.SetDisabled(ctx, "ann@EXAMPLE.com", true); err != nil || !got.Disabled || got.Role != server.RoleAdmin {
			t.Fatalf("SetDisabled(true) = %+v, %v", got, err)
		}
		if got, err = s.UserByEmail(ctx, "ann@example.com"); err != nil || !got.Disabled || got.Role != server.RoleAdmin ||
			!bytes.Equal(got.PasswordHash, []byte("h")) {
			t.Fatalf("UserByEmail after the changes = %+v, %v", got, err)
		}
		if got, err = s.SetDisabled(ctx, "ann@example.com", false); err != nil || got.Disabled {
			t.Fatalf("SetDisabled(false) = %+v, %v", got, err)
		}
		if got, err = s.SetRole(ctx, "ann@example.com", server.RoleUser); err != nil || got.Role != server.RoleUser {
			t.Fatalf("SetRole(user) = %+v, %v", got, err)
		}
		_, err = s.SetRole(ctx, "bob@example.com", server.RoleAdmin)
		wantCode(t, "SetRole of an unknown email", err, server.ENOTFOUND)
		_, err = s.SetDisabled(ctx, "bob@example.com", true)
		wantCode(t, "SetDisabled of an unknown email", err, server.ENOTFOUND)
	})
	t.Run("ListAndStates", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		if list, err := s.ListUsers(ctx, 0, 10); err != nil || len(list) != 0 {
			t.Fatalf("ListUsers of an empty store = %v, %v", list, err)
		}
		if st, err := s.UserStates(ctx); err != nil || len(st) != 0 {
			t.Fatalf("UserStates of an empty store = %v, %v", st, err)
		}
		emails := []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"}
		for _, e := range emails {
			if _, err := s.CreateUser(ctx, e, []byte("h")); err != nil {
				t.Fatal(err)
			}
		}
		var seen []string
		var after int64
		for {
			page, err := s.ListUsers(ctx, after, 2)
			if err != nil {
				t.Fatalf("ListUsers: %v", err)
			}
			if len(page) > 2 {
				t.Fatalf("ListUsers(limit 2) returned %d users", len(page))
			}
			if len(page) == 0 {
				break
			}
			for _, u := range page {
				if u.ID <= after {
					t.Fatalf("ListUsers(after %d) returned id %d", after, u.ID)
				}
				after = u.ID
				seen = append(seen, u.Email)
			}
		}
		if strings.Join(seen, ",") != strings.Join(emails, ",") {
			t.Fatalf("paging saw %v, want %v", seen, emails)
		}
		if _, err := s.SetRole(ctx, "b@example.com", server.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetDisabled(ctx, "d@example.com", true); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetDisabled(ctx, "e@example.com", true); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetDisabled(ctx, "e@example.com", false); err != nil {
			t.Fatal(err)
		}
		st, err := s.UserStates(ctx)
		if err != nil {
			t.Fatalf("UserStates: %v", err)
		}
		var got []string
		for _, u := range st {
			if u.PasswordHash != nil {
				t.Errorf("UserStates returned the password hash of %s", u.Email)
			}
			got = append(got, fmt.Sprintf("%s:%s:%v", u.Email, u.Role, u.Disabled))
		}
		if want := "b@example.com:admin:false,d@example.com:user:true"; strings.Join(got, ",") != want {
			t.Fatalf("UserStates = %v, want %s", got, want)
		}
	})
}
