package mysql_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/mysql"
	"github.com/v2m/v2m/pkg/server/servertest"
)

func logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// unique returns a name no other test or run uses.
func unique(prefix string) string { return prefix + "_" + server.NewID()[:12] }

// openTable opens a store on a table of its own, dropped when the test ends.
func openTable(t *testing.T) (*mysql.Store, *sql.DB, string) {
	t.Helper()
	return openTables(t, "")
}

// openTables opens a store on a users table of its own, and a personal tokens table of its
// own when tokens is not "", dropped when the test ends.
func openTables(t *testing.T, tokens string) (*mysql.Store, *sql.DB, string) {
	t.Helper()
	dsn := testenv.Get(t, testenv.MySQLDSN)
	table := unique("user_t")
	ctx := t.Context()
	opts := []mysql.Option{mysql.WithTable(table)}
	if tokens != "" {
		opts = append(opts, mysql.WithTokensTable(tokens))
	}
	s, err := mysql.Open(ctx, dsn, logger(t), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	raw, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = raw.ExecContext(context.Background(), "DROP TABLE IF EXISTS `"+table+"`")
		if tokens != "" {
			_, _ = raw.ExecContext(context.Background(), "DROP TABLE IF EXISTS `"+tokens+"`")
		}
		raw.Close()
		s.Close()
	})
	return s, raw, table
}

func TestContractUserStore(t *testing.T) {
	t.Parallel()
	servertest.TestUserStore(t, func(t *testing.T) server.UserStore {
		s, _, _ := openTable(t)
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return s
	})
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
	servertest.TestRevocationStore(t, func(*testing.T) server.RevocationStore { return s })
}

func TestContractPersonalTokenStore(t *testing.T) {
	t.Parallel()
	servertest.TestPersonalTokenStore(t, func(t *testing.T) server.PersonalTokenStore {
		s, _, _ := openTables(t, unique("pat_t"))
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return s
	})
}
