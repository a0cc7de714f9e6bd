package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// Remote implements server.Accounts and server.TokenRevoker by calling an auth service's /v1
// routes. It sends the client's IP (server.ClientIP of the context) as X-Forwarded-For, so
// that the auth service throttles by it when it trusts the gateway (its --trusted-proxies).
type Remote struct {
	BaseURL string // e.g. http://auth:8081
	Client  *http.Client
	// Revocations, when set, learns of a token revoked through this gateway at once, before
	// its next refresh from the auth service.
	Revocations *RemoteRevocations
	// PersonalTTL is how long an answer of the auth service about a personal token is
	// cached (DefaultPersonalCache when zero): a token revoked through another gateway works
	// here for up to that long.
	PersonalTTL time.Duration

	cache personalCache
}

// RevokeToken implements server.TokenRevoker: DELETE /v1/tokens/current on the auth service
// with the token itself.
func (r *Remote) RevokeToken(ctx context.Context, raw string, c *server.Claims) error {
	err := r.do(ctx, http.MethodDelete, "/v1/tokens/current", nil, withBearer(raw), nil)
	if err != nil {
		return err
	}
	if c.Personal {
		r.cache.drop(c.ID)
	}
	if r.Revocations != nil {
		r.Revocations.Add(server.Revocation{ID: c.ID, ExpiresAt: c.ExpiresAt})
	}
	return nil
}

type userJSON struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

// Register implements server.Accounts.
func (r *Remote) Register(ctx context.Context, email, password string) (*server.User, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	var u userJSON
	if err := r.do(ctx, http.MethodPost, "/v1/users", body, nil, &u); err != nil {
		return nil, err
	}
	return &server.User{ID: u.ID, Email: u.Email, CreatedAt: u.CreatedAt}, nil
}

// Login implements server.Accounts.
func (r *Remote) Login(ctx context.Context, email, password string) (string, time.Time, error) {
	var tok struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	err := r.do(ctx, http.MethodPost, "/v1/tokens", nil, func(req *http.Request) { req.SetBasicAuth(email, password) }, &tok)
	if err != nil {
		return "", time.Time{}, err
	}
	return tok.Token, tok.ExpiresAt, nil
}

// Ping checks that the auth service answers its health route.
func (r *Remote) Ping(ctx context.Context) error {
	return r.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
}

func (r *Remote) do(ctx context.Context, method, path string, body []byte, edit func(*http.Request), out any) error {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(r.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("auth request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ip := server.ClientIP(ctx); ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	if edit != nil {
		edit(req)
	}
	client := r.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return server.Errorf(server.EUNAVAILABLE, "auth service unreachable")
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return server.Errorf(server.EUNAVAILABLE, "auth service: %v", err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		retry := retryAfter(resp.Header.Get("Retry-After"))
		if json.Unmarshal(data, &e) == nil && e.Error.Code != "" &&
			(resp.StatusCode < 500 || resp.StatusCode == http.StatusServiceUnavailable && e.Error.Code == server.EUNAVAILABLE) {
			return &server.Error{Code: e.Error.Code, Message: e.Error.Message, RetryAfter: retry}
		}
		return &server.Error{Code: server.EUNAVAILABLE, Message: "auth service answered " + resp.Status, RetryAfter: retry}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode auth answer: %w", err)
		}
	}
	return nil
}

// retryAfter reads a Retry-After header in seconds; 0 when absent or not a number.
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 86400)) * time.Second
}
