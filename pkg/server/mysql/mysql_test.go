package mysql_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/mysql"
	"github.com/v2m/v2m/pkg/server/storetest"
)

func logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// unique returns a name no other test or run uses.
func unique(prefix string) string { return prefix + "_" + server.NewID()[:12] }

// openTable opens a store on a table of its own, dropped when the test ends.
func openTable(t *testing.T) (*mysql.Store, *sql.DB, string) {
	t.Helper()
	dsn := testenv.Get(t, testenv.MySQLDSN)
	table := unique("user_t")
	ctx := t.Context()
	s, err := mysql.Open(ctx, dsn, logger(t), mysql.WithTable(table))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	raw, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = raw.ExecContext(context.Background(), "DROP TABLE IF EXISTS `"+table+"`")
		raw.Close()
		s.Close()
	})
	return s, raw, table
}

func TestCreateAndFind(t *testing.T) {
	t.Parallel()
	s, _, _ := openTable(t)
	ctx := t.Context()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if err := s.Migrate(ctx); err != nil { // idempotent
		t.Fatalf("second Migrate: %v", err)
	}
	email := unique("alice") + "@example.com"
	hash := []byte("$2a$10$abcdefghijklmnopqrstuv")
	before := time.Now().Add(-time.Second)
	u, err := s.CreateUser(ctx, email, hash)
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if u.ID <= 0 || u.Email != email || !bytes.Equal(u.PasswordHash, hash) || u.CreatedAt.Before(before) {
		t.Fatalf("CreateUser returned %+v", u)
	}
	got, err := s.UserByEmail(ctx, email)
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	if got.ID != u.ID || got.Email != email || !bytes.Equal(got.PasswordHash, hash) || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("UserByEmail = %+v, want %+v", got, u)
	}
	// Case-insensitive lookup.
	got, err = s.UserByEmail(ctx, strings.ToUpper(email))
	if err != nil || got.ID != u.ID {
		t.Fatalf("UserByEmail(upper) = %+v, %v", got, err)
	}
	// A second user gets another id.
	u2, err := s.CreateUser(ctx, unique("bob")+"@example.com", hash)
	if err != nil || u2.ID == u.ID {
		t.Fatalf("second CreateUser = %+v, %v", u2, err)
	}
}

func TestDuplicateEmail(t *testing.T) {
	t.Parallel()
	s, _, _ := openTable(t)
	ctx := t.Context()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	email := unique("dup") + "@example.com"
	if _, err := s.CreateUser(ctx, email, []byte("h1")); err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{email, strings.ToUpper(email)} {
		_, err := s.CreateUser(ctx, e, []byte("h2"))
		if !server.IsCode(err, server.ECONFLICT) {
			t.Fatalf("CreateUser(%s) again: %v, want %s", e, err, server.ECONFLICT)
		}
	}
	u, err := s.UserByEmail(ctx, email)
	if err != nil || string(u.PasswordHash) != "h1" {
		t.Fatalf("first user changed: %+v, %v", u, err)
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	s, _, _ := openTable(t)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err := s.UserByEmail(t.Context(), unique("nobody")+"@example.com")
	if !server.IsCode(err, server.ENOTFOUND) {
		t.Fatalf("UserByEmail(missing) = %v, want %s", err, server.ENOTFOUND)
	}
}

// TestMigrateAddsCreatedAt starts from the tutorial's table, without created_at.
func TestMigrateAddsCreatedAt(t *testing.T) {
	t.Parallel()
	s, raw, table := openTable(t)
	ctx := t.Context()
	_, err := raw.ExecContext(ctx, fmt.Sprintf("CREATE TABLE `%s` (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, "+
		"email VARCHAR(255) NOT NULL UNIQUE, password VARCHAR(255) NOT NULL)", table))
	if err != nil {
		t.Fatal(err)
	}
	old := unique("old") + "@example.com"
	if _, err := raw.ExecContext(ctx, fmt.Sprintf("INSERT INTO `%s` (email, password) VALUES (?, ?)", table), old, "oldhash"); err != nil {
		t.Fatal(err)
	}
	// Before the migration, the store cannot read the table.
	if _, err := s.UserByEmail(ctx, old); err == nil || server.IsCode(err, server.ENOTFOUND) {
		t.Fatalf("UserByEmail before Migrate = %v, want a backend error", err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	u, err := s.UserByEmail(ctx, old)
	if err != nil {
		t.Fatalf("UserByEmail after Migrate: %v", err)
	}
	if string(u.PasswordHash) != "oldhash" || u.CreatedAt.IsZero() {
		t.Fatalf("migrated user = %+v", u)
	}
	if _, err := s.CreateUser(ctx, unique("new")+"@example.com", []byte("h")); err != nil {
		t.Fatalf("CreateUser after Migrate: %v", err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
}

func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	s, _, _ := openTable(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- s.Migrate(t.Context()) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
}

func TestOpenFailures(t *testing.T) {
	t.Parallel()
	dsn := testenv.Get(t, testenv.MySQLDSN)
	ctx := t.Context()
	if _, err := mysql.Open(ctx, "not a dsn", logger(t)); err == nil {
		t.Error("Open(bad dsn) succeeded")
	}
	if _, err := mysql.Open(ctx, dsn, logger(t), mysql.WithTable("x`; DROP TABLE user; --")); err == nil {
		t.Error("Open with a bad table name succeeded")
	}
	bad := strings.Replace(dsn, ":Auth123@", ":wrong-password@", 1)
	if bad != dsn {
		if _, err := mysql.Open(ctx, bad, logger(t)); err == nil {
			t.Error("Open with a wrong password succeeded")
		}
	}
	// Nothing listens on port 1.
	if _, err := mysql.Open(ctx, "u:p@tcp(127.0.0.1:1)/auth?timeout=2s", logger(t)); err == nil {
		t.Error("Open(unreachable) succeeded")
	}
}

func TestBackendDown(t *testing.T) {
	t.Parallel()
	s, _, _ := openTable(t)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := s.UserByEmail(t.Context(), "x@example.com")
	if err == nil || server.IsCode(err, server.ENOTFOUND) || server.IsCode(err, server.ECONFLICT) {
		t.Fatalf("UserByEmail on a closed store = %v, want a transient error", err)
	}
	if _, err := s.CreateUser(t.Context(), "x@example.com", nil); err == nil || server.IsCode(err, server.ECONFLICT) {
		t.Fatalf("CreateUser on a closed store = %v", err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Fatal("Ping on a closed store succeeded")
	}
}

func TestDefaultTableMigrates(t *testing.T) {
	t.Parallel()
	s, err := mysql.Open(t.Context(), testenv.Get(t, testenv.MySQLDSN), logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate(user): %v", err)
	}
	email := unique("default") + "@example.com"
	if _, err := s.CreateUser(t.Context(), email, []byte("h")); err != nil {
		t.Fatal(err)
	}
	if u, err := s.UserByEmail(t.Context(), email); err != nil || u.Email != email {
		t.Fatalf("UserByEmail = %+v, %v", u, err)
	}
}

func TestRevocations(t *testing.T) {
	t.Parallel()
	users, table := unique("user_t"), unique("revoked_t")
	s, err := mysql.Open(t.Context(), testenv.Get(t, testenv.MySQLDSN), logger(t), mysql.WithTable(users),
		mysql.WithRevocationsTable(table))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	raw, err := sql.Open("mysql", testenv.Get(t, testenv.MySQLDSN))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, tb := range []string{users, table} {
			_, _ = raw.ExecContext(context.Background(), "DROP TABLE IF EXISTS `"+tb+"`")
		}
	})
	storetest.RevocationStore(t, s)
}
