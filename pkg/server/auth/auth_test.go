package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/server/token"
)

func newService(t *testing.T) (*Service, *token.Verifier) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "v2m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pem, _ := token.GenerateEd25519PEM()
	k, _ := token.ParseKey(token.EdDSA, pem)
	return &Service{Users: db.Users(), Tokens: &token.Issuer{Key: k, Issuer: "v2m"}, Cost: bcrypt.MinCost},
		&token.Verifier{Alg: token.EdDSA, Issuer: "v2m", Keys: token.StaticKeys{k}}
}

func TestRegisterLogin(t *testing.T) {
	ctx := context.Background()
	s, v := newService(t)
	u, err := s.Register(ctx, "Ann@Example.com", "correct horse")
	if err != nil || u.Email != "ann@example.com" {
		t.Fatalf("register: %+v %v", u, err)
	}
	if string(u.PasswordHash) == "correct horse" || bcrypt.CompareHashAndPassword(u.PasswordHash, []byte("correct horse")) != nil {
		t.Fatal("password not stored as a bcrypt hash")
	}
	if _, err := s.Register(ctx, "ann@example.com", "another one"); !server.IsCode(err, server.ECONFLICT) {
		t.Fatalf("duplicate: %v", err)
	}
	tok, exp, err := s.Login(ctx, "ANN@example.com", "correct horse")
	if err != nil || exp.Before(time.Now()) {
		t.Fatalf("login: %v", err)
	}
	c, err := v.Verify(ctx, tok)
	if err != nil || c.Subject != "ann@example.com" {
		t.Fatalf("token: %+v %v", c, err)
	}
	for _, tc := range []struct{ email, pw string }{{"ann@example.com", "wrong password"}, {"nobody@example.com", "correct horse"}, {"bad", "correct horse"}} {
		if _, _, err := s.Login(ctx, tc.email, tc.pw); !server.IsCode(err, server.EUNAUTHORIZED) || server.ErrorMessage(err) != "wrong email or password" {
			t.Errorf("login %q: %v", tc.email, err)
		}
	}
}

func TestRegisterValidation(t *testing.T) {
	s, _ := newService(t)
	for _, tc := range []struct{ email, pw string }{
		{"", "password1"}, {"no-at-sign", "password1"}, {"Ann <a@example.com>", "password1"}, {"a@example.com", "short"},
		{"a@example.com", strings.Repeat("x", 73)},
	} {
		if _, err := s.Register(context.Background(), tc.email, tc.pw); !server.IsCode(err, server.EINVALID) {
			t.Errorf("Register(%q, %d bytes) = %v, want invalid", tc.email, len(tc.pw), err)
		}
	}
	if _, err := s.Register(context.Background(), "a@example.com", strings.Repeat("x", 72)); err != nil {
		t.Errorf("72-byte password refused: %v", err)
	}
}

func TestRemoteMapsErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/users":
			w.WriteHeader(http.StatusConflict)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "conflict", "message": "taken"}})
		case "/v1/tokens":
			if u, p, ok := r.BasicAuth(); !ok || u != "a@example.com" || p != "pw123456" {
				w.WriteHeader(http.StatusUnauthorized)
				json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "unauthorized", "message": "no"}})
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"token": "t", "expires_at": time.Now().Add(time.Hour)})
		default:
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	r := &Remote{BaseURL: srv.URL}
	ctx := context.Background()
	if _, err := r.Register(ctx, "a@example.com", "pw123456"); !server.IsCode(err, server.ECONFLICT) || server.ErrorMessage(err) != "taken" {
		t.Fatalf("register: %v", err)
	}
	if tok, _, err := r.Login(ctx, "a@example.com", "pw123456"); err != nil || tok != "t" {
		t.Fatalf("login: %v", err)
	}
	if _, _, err := r.Login(ctx, "a@example.com", "nope"); !server.IsCode(err, server.EUNAUTHORIZED) {
		t.Fatalf("bad login: %v", err)
	}
	if err := r.Ping(ctx); !server.IsCode(err, server.EUNAVAILABLE) {
		t.Fatalf("5xx: %v", err)
	}
	srv.Close()
	if _, _, err := r.Login(ctx, "a@example.com", "pw123456"); !server.IsCode(err, server.EUNAVAILABLE) {
		t.Fatalf("down: %v", err)
	}
}

// TestHashingBounded: with every bcrypt slot taken, a login waits at most HashWait, then gets
// EUNAVAILABLE with a Retry-After; one whose context ends stops waiting at once.
func TestHashingBounded(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	s.HashConcurrency, s.HashWait = 1, 50*time.Millisecond
	if _, err := s.Register(ctx, "ann@example.com", "correct horse"); err != nil {
		t.Fatal(err)
	}
	hold, held := make(chan struct{}), make(chan struct{})
	go s.hashing(ctx, func() { close(held); <-hold })
	<-held
	for _, email := range []string{"ann@example.com", "nobody@example.com"} {
		_, _, err := s.Login(ctx, email, "correct horse")
		if !server.IsCode(err, server.EUNAVAILABLE) || server.RetryAfter(err) <= 0 {
			t.Fatalf("login of %s with no free slot: %v (retry after %v)", email, err, server.RetryAfter(err))
		}
	}
	if _, err := s.Register(ctx, "bob@example.com", "correct horse"); !server.IsCode(err, server.EUNAVAILABLE) {
		t.Fatalf("register with no free slot: %v", err)
	}
	s.HashWait = time.Hour
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.Login(cctx, "ann@example.com", "correct horse"); !errors.Is(err, context.Canceled) {
		t.Fatalf("login with an ended context: %v", err)
	}
	close(hold)
	if _, _, err := s.Login(ctx, "ann@example.com", "correct horse"); err != nil {
		t.Fatalf("login once the slot is free: %v", err)
	}
}
