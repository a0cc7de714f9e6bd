package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/v2m/v2m/pkg/wire"
)

type (
	// PersonalToken describes a personal API token (never the token itself).
	PersonalToken = wire.PersonalToken
	// CreatedPersonalToken is a new personal token, with the token, shown this once.
	CreatedPersonalToken = wire.CreatedPersonalToken
	// AdminUser is a user as administrators see it.
	AdminUser = wire.AdminUser
)

// CreatePersonalToken creates a personal API token for scripts: POST /v1/tokens/personal. ttl
// 0 takes the server's default lifetime.
func (c *Client) CreatePersonalToken(ctx context.Context, name string, ttl time.Duration, readOnly bool) (*CreatedPersonalToken, error) {
	in := wire.NewPersonalToken{Name: name, ReadOnly: readOnly}
	if ttl > 0 {
		in.TTL = strconv.FormatInt(int64(ttl/time.Second), 10) + "s"
	}
	var out CreatedPersonalToken
	if err := c.doJSON(ctx, http.MethodPost, "/v1/tokens/personal", in, &out, nil); err != nil {
		return nil, fmt.Errorf("create a personal token: %w", err)
	}
	return &out, nil
}

// PersonalTokens lists the caller's personal tokens, newest first.
func (c *Client) PersonalTokens(ctx context.Context) ([]PersonalToken, error) {
	var out wire.PersonalTokenList
	if err := c.doJSON(ctx, http.MethodGet, "/v1/tokens/personal", nil, &out, nil); err != nil {
		return nil, fmt.Errorf("list personal tokens: %w", err)
	}
	if out.Tokens == nil {
		out.Tokens = []PersonalToken{}
	}
	return out.Tokens, nil
}

// RevokePersonalToken revokes the caller's personal token id.
func (c *Client) RevokePersonalToken(ctx context.Context, id string) error {
	if err := c.doJSON(ctx, http.MethodDelete, "/v1/tokens/personal/"+url.PathEscape(id), nil, nil, nil); err != nil {
		return fmt.Errorf("revoke personal token %s: %w", id, err)
	}
	return nil
}

// AdminUsers lists every user (administrators only; others get not found).
func (c *Client) AdminUsers(ctx context.Context) ([]AdminUser, error) {
	all := []AdminUser{}
	for after := int64(0); ; {
		var page wire.AdminUserList
		path := "/v1/admin/users?limit=1000&after=" + strconv.FormatInt(after, 10)
		if err := c.doJSON(ctx, http.MethodGet, path, nil, &page, nil); err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		all = append(all, page.Users...)
		if page.Next <= after {
			return all, nil
		}
		after = page.Next
	}
}

// SetUserDisabled disables or enables a user (administrators only).
func (c *Client) SetUserDisabled(ctx context.Context, email string, disabled bool) (*AdminUser, error) {
	verb := "enable"
	if disabled {
		verb = "disable"
	}
	var out AdminUser
	if err := c.doJSON(ctx, http.MethodPost, "/v1/admin/users/"+url.PathEscape(email)+"/"+verb, nil, &out, nil); err != nil {
		return nil, fmt.Errorf("%s %s: %w", verb, email, err)
	}
	return &out, nil
}
