// Package mysql keeps v2m's users in MySQL or MariaDB: the tutorial's `user` table, with a
// created_at column added by Migrate when an older table lacks it, and the revoked tokens
// (table revoked_token) of the auth service.
package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/v2m/v2m/pkg/server"
)

// MySQL error numbers the store branches on.
const (
	errDupEntry     = 1062 // ER_DUP_ENTRY
	errDupFieldName = 1060 // ER_DUP_FIELDNAME: a concurrent Migrate added the column first
)

// Pool settings. ConnMaxLifetime stays well below MySQL's default wait_timeout (8 h) and the
// idle timeouts of proxies and managed databases (RDS Proxy, load balancers: minutes), so the
// pool never hands out a connection the server has already dropped.
const (
	maxOpenConns    = 20
	maxIdleConns    = 5
	connMaxLifetime = 3 * time.Minute
	connMaxIdleTime = time.Minute
)

// DefaultTable is the table users live in.
const DefaultTable = "user"

// DefaultRevocationsTable is the table revoked tokens live in.
const DefaultRevocationsTable = "revoked_token"

// DefaultTokensTable is the table personal API tokens live in.
const DefaultTokensTable = "personal_token"

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Option changes how Open sets up a Store.
type Option func(*Store)

// WithTable keeps the users in another table than DefaultTable (several deployments or test
// runs sharing one database). The name must be a plain identifier.
func WithTable(name string) Option { return func(s *Store) { s.table = name } }

// WithRevocationsTable keeps the revoked tokens in another table than DefaultRevocationsTable.
func WithRevocationsTable(name string) Option { return func(s *Store) { s.revoked = name } }

// WithTokensTable keeps the personal API tokens in another table than DefaultTokensTable.
func WithTokensTable(name string) Option { return func(s *Store) { s.tokens = name } }

// Store is a server.UserStore, a server.RevocationStore and a server.PersonalTokenStore on
// MySQL. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	log     *slog.Logger
	table   string
	revoked string
	tokens  string
}

var (
	_ server.UserStore          = (*Store)(nil)
	_ server.RevocationStore    = (*Store)(nil)
	_ server.PersonalTokenStore = (*Store)(nil)
)

// Open connects to the database named by dsn (go-sql-driver/mysql format, for example
// "user:pass@tcp(127.0.0.1:3306)/auth"), and checks that it answers. parseTime is turned on
// whatever the DSN says, and times are read and written in UTC unless the DSN sets loc.
// Call Migrate before the first use on a new database.
func Open(ctx context.Context, dsn string, logger *slog.Logger, opts ...Option) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse mysql dsn: %w", err)
	}
	cfg.ParseTime = true
	cfg.Logger = driverLogger{logger} // the driver's own lines ("closing bad idle connection") go to slog
	if cfg.Loc == nil {
		cfg.Loc = time.UTC
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql connector: %w", err)
	}
	s := &Store{db: sql.OpenDB(connector), log: logger, table: DefaultTable, revoked: DefaultRevocationsTable, tokens: DefaultTokensTable}
	for _, o := range opts {
		o(s)
	}
	for _, t := range []string{s.table, s.revoked, s.tokens} {
		if !tableName.MatchString(t) {
			s.db.Close()
			return nil, fmt.Errorf("mysql: bad table name %q", t)
		}
	}
	s.db.SetMaxOpenConns(maxOpenConns)
	s.db.SetMaxIdleConns(maxIdleConns)
	s.db.SetConnMaxLifetime(connMaxLifetime)
	s.db.SetConnMaxIdleTime(connMaxIdleTime)
	if err := s.Ping(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	s.log.Debug("mysql connected", "addr", cfg.Addr, "db", cfg.DBName, "table", s.table)
	return s, nil
}

// driverLogger is the driver's mysql.Logger on slog: its lines are about connections that
// broke, so they are warnings.
type driverLogger struct{ log *slog.Logger }

func (d driverLogger) Print(v ...any) {
	d.log.Warn("mysql driver: "+strings.TrimSpace(fmt.Sprint(v...)), "component", "mysql")
}

// errUnavailable is the answer while the database cannot be reached.
func errUnavailable() *server.Error {
	return &server.Error{Code: server.EUNAVAILABLE, RetryAfter: 2 * time.Second,
		Message: "the account database is unavailable; try again shortly"}
}

// wrap adds op to a driver error, and marks the errors that mean the database cannot be
// reached (refused or broken connections, the server shutting down or out of connections)
// as EUNAVAILABLE, so that auth answers 503 rather than 500.
func wrap(op string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, errUnavailable(), err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// MySQL server errors that mean "not now" rather than a fault of the query.
const (
	errConCount       = 1040 // ER_CON_COUNT_ERROR: too many connections
	errServerShutdown = 1053 // ER_SERVER_SHUTDOWN
	errReadOnly       = 1290 // ER_OPTION_PREVENTS_STATEMENT: e.g. --read-only during a failover
)

func unavailable(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == errConCount || me.Number == errServerShutdown || me.Number == errReadOnly
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET)
}

// Close closes the connection pool.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the database answers, for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return wrap("ping mysql", err)
	}
	return nil
}

// Migrate creates the users table, or brings an older one up to date: the tutorial's table
// (id, email, password) gets a created_at column, existing rows taking the migration's time.
// It creates the revocations table too. It is idempotent and safe to run from several
// processes at once.
func (s *Store) Migrate(ctx context.Context) error {
	revoked := fmt.Sprintf("CREATE TABLE IF NOT EXISTS `%s` ("+
		"jti VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, "+
		"expires_at BIGINT NOT NULL, "+
		"INDEX expires_at (expires_at)"+
		") ENGINE=InnoDB", s.revoked)
	if _, err := s.db.ExecContext(ctx, revoked); err != nil {
		return fmt.Errorf("create table %s: %w", s.revoked, err)
	}
	create := fmt.Sprintf("CREATE TABLE IF NOT EXISTS `%s` ("+
		"id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, "+
		"email VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL UNIQUE, "+
		"password VARCHAR(255) NOT NULL, "+
		"created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)"+
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci", s.table)
	if _, err := s.db.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("create table %s: %w", s.table, err)
	}
	if err := s.migrateIdentity(ctx); err != nil {
		return err
	}
	return s.addColumn(ctx, "created_at", "DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)")
}

// addColumn adds column to the users table unless it has it; a concurrent Migrate that adds
// it first is not an error.
func (s *Store) addColumn(ctx context.Context, column, def string) error {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.COLUMNS "+
		"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?", s.table, column).Scan(&n)
	if err != nil {
		return fmt.Errorf("inspect table %s: %w", s.table, err)
	}
	if n > 0 {
		return nil
	}
	alter := fmt.Sprintf("ALTER TABLE `%s` ADD COLUMN %s %s", s.table, column, def)
	if _, err := s.db.ExecContext(ctx, alter); err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == errDupFieldName {
			return nil
		}
		return fmt.Errorf("add %s to %s: %w", column, s.table, err)
	}
	s.log.Info("mysql migrated: added "+column, "table", s.table)
	return nil
}

// CreateUser stores a new user. An email already taken, in any letter case, gives ECONFLICT.
func (s *Store) CreateUser(ctx context.Context, email string, passwordHash []byte) (*server.User, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	res, err := s.db.ExecContext(ctx,
		fmt.Sprintf("INSERT INTO `%s` (email, password, created_at) VALUES (?, ?, ?)", s.table),
		email, string(passwordHash), now)
	if err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == errDupEntry {
			return nil, server.Errorf(server.ECONFLICT, "a user with email %s already exists", email)
		}
		return nil, wrap("insert user "+server.UserRef(email), err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return nil, wrap("insert user "+server.UserRef(email)+": last insert id", err)
	}
	return &server.User{ID: id, Email: email, PasswordHash: append([]byte(nil), passwordHash...), CreatedAt: now,
		Role: server.RoleUser}, nil
}

// UserByEmail returns the user whose email matches, ignoring letter case, or ENOTFOUND.
func (s *Store) UserByEmail(ctx context.Context, email string) (*server.User, error) {
	// The email column's collation (utf8mb4_unicode_ci, set by Migrate; the tutorial's table
	// gets a _ci default too) makes this comparison, and the unique index, case-insensitive.
	q := fmt.Sprintf("SELECT %s FROM `%s` WHERE email = ?", userColumns, s.table)
	u, err := scanUser(s.db.QueryRowContext(ctx, q, email))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, server.Errorf(server.ENOTFOUND, "no user with email %s", strings.ToLower(email))
	}
	if err != nil {
		return nil, wrap("select user "+server.UserRef(email), err)
	}
	return u, nil
}
