package mysql_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/mysql"
)

// link is a TCP relay to the database that the test can cut, as an outage does: the
// connections open break and new ones are refused.
type link struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newLink(t *testing.T, target string) *link {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &link{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			l.mu.Lock()
			l.conns = append(l.conns, c, up)
			l.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(l.cut)
	return l
}

func (l *link) cut() {
	l.ln.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

// TestDatabaseDownIsUnavailable: with the database unreachable, every store call gives
// EUNAVAILABLE with a wait and a message for people (so auth answers 503, not 500), and the
// driver's own complaints go to the JSON log, not to stderr as plain text.
func TestDatabaseDownIsUnavailable(t *testing.T) {
	t.Parallel()
	dsn := testenv.Get(t, testenv.MySQLDSN)
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	l := newLink(t, cfg.Addr)
	cfg.Addr = l.ln.Addr().String()
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), nil))
	users, revoked := unique("user_t"), unique("revoked_t")
	s, err := mysql.Open(t.Context(), cfg.FormatDSN(), log, mysql.WithTable(users), mysql.WithRevocationsTable(revoked))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, tb := range []string{users, revoked} {
			_, _ = raw.ExecContext(context.Background(), "DROP TABLE IF EXISTS `"+tb+"`")
		}
		raw.Close()
	})
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	email := unique("down") + "@example.com"
	if _, err := s.CreateUser(t.Context(), email, []byte("h")); err != nil {
		t.Fatal(err)
	}
	l.cut()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, lookErr := s.UserByEmail(ctx, email)
	_, createErr := s.CreateUser(ctx, "other-"+email, []byte("h"))
	_, revokedErr := s.Revoked(ctx, "jti")
	for name, err := range map[string]error{
		"UserByEmail": lookErr, "CreateUser": createErr, "Revoked": revokedErr,
		"Revoke": s.Revoke(ctx, "jti", time.Now().Add(time.Hour)), "Ping": s.Ping(ctx),
	} {
		if !server.IsCode(err, server.EUNAVAILABLE) || server.RetryAfter(err) <= 0 {
			t.Errorf("%s with the database down: %v (code %s), want unavailable with a wait", name, err, server.ErrorCode(err))
			continue
		}
		if msg := server.ErrorMessage(err); msg != "the account database is unavailable; try again shortly" {
			t.Errorf("%s: message %q", name, msg)
		}
		if strings.Contains(err.Error(), email) {
			t.Errorf("%s: the error, which is logged, names the user's address: %v", name, err)
		}
	}
	logMu.Lock()
	defer logMu.Unlock()
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if line != "" && !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %q", line)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
