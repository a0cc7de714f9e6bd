// Package sqlite implements v2m's stores for standalone on one SQLite file (modernc.org/sqlite,
// pure Go): users, uploads, jobs, the notifications sent, and a durable message queue.
//
// Only one process may use a database: Open takes an exclusive lock file beside it. OpenBeside
// opens it without the lock for v2md admin, which only reads and settles records.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/v2m/v2m/pkg/server"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is an open v2m database.
type DB struct {
	db   *sql.DB
	lock *os.File
	now  func() time.Time

	// Shared by every Queue of the database: a publish through one wakes the consumers of
	// another, and a topic has one consumer in the process (it owns the topic's leases).
	qmu       sync.Mutex
	wake      map[string]chan struct{}
	consuming map[string]bool
}

// Open opens (creating if needed) the database at path and applies pending migrations.
func Open(ctx context.Context, path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create database dir: %w", err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("database %s is in use by another v2md process", path)
	}
	return openWith(ctx, path, lock)
}

// OpenBeside opens an existing database without its lock, beside the v2md process that may
// hold it, for an operator's short admin commands (v2md admin): SQLite's own locking keeps
// the two writers apart. Such a DB must not consume its queues, whose leases belong to the
// process holding the lock; what it publishes or replays is picked up by that process's next
// poll.
func OpenBeside(ctx context.Context, path string) (*DB, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no database at %s (is it a standalone server's data directory?)", path)
	} else if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return openWith(ctx, path, nil)
}

func openWith(ctx context.Context, path string, lock *os.File) (*DB, error) {
	// The database holds password hashes: only its owner may read it. SQLite gives its -wal
	// and -shm files the database's mode.
	if err := private(path); err != nil {
		lock.Close()
		return nil, err
	}
	sqldb, err := sql.Open("sqlite", "file:"+path+"?"+dsnParams().Encode())
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	d := &DB{db: sqldb, lock: lock, now: time.Now, wake: map[string]chan struct{}{}, consuming: map[string]bool{}}
	if err := d.migrate(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// dsnParams are the connection's settings: a 10 s busy timeout, WAL, and write transactions
// that take the write lock when they begin.
func dsnParams() url.Values {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	return q
}

// Close closes the database and releases its lock.
func (d *DB) Close() error {
	err := d.db.Close()
	if d.lock != nil {
		d.lock.Close()
	}
	return err
}

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.db.PingContext(ctx) }

func (d *DB) migrate(ctx context.Context) error {
	if _, err := d.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		v, err := strconv.Atoi(strings.SplitN(filepath.Base(name), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: bad name", name)
		}
		if err := d.apply(ctx, v, name); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return nil
}

func (d *DB) apply(ctx context.Context, version int, name string) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	script, err := migrations.ReadFile(name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(script)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES (?)`, version); err != nil {
		return err
	}
	return tx.Commit()
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

func notFound(what, id string) error {
	return server.Errorf(server.ENOTFOUND, "%s %s not found", what, id)
}

var errNoRows = sql.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }

// private creates the file at path with mode 0600, or takes group and other access away
// from an existing one.
func private(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open database file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat database file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(fi.Mode().Perm() &^ 0o077); err != nil {
			return fmt.Errorf("restrict database file: %w", err)
		}
	}
	return nil
}
