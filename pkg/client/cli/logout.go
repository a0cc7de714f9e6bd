package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
)

// revokeTimeout bounds the call that revokes the token: logging out must not hang on a
// server that does not answer.
const revokeTimeout = 15 * time.Second

type logoutOptions struct {
	IO              *iostreams
	Config          func() (*config, error)
	TokenStore      func() (client.TokenStore, error)
	ClientWithToken func(token string) (*client.Client, error)
	JSON            bool
}

func newCmdLogout(f *factory, runF func(*logoutOptions) error) *cobra.Command {
	opts := &logoutOptions{IO: f.io, Config: f.config, TokenStore: f.tokenStore, ClientWithToken: f.clientWithToken}
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke the stored token on the server and forget it",
		Long: "logout asks the server to revoke the token (it is refused from then on) and forgets it. When the\n" +
			"server cannot revoke it (unreachable, or too old to know how) the token is forgotten all the same,\n" +
			"and v2m says that it stays valid until it expires. Without a token it says \"not logged in\" and\n" +
			"exits 0: there is nothing left to log out of.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.JSON = f.flags.json
			if runF != nil {
				return runF(opts)
			}
			return logoutRun(cmd.Context(), opts)
		},
	}
}

func logoutRun(ctx context.Context, opts *logoutOptions) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	store, err := opts.TokenStore()
	if err != nil {
		return err
	}
	if _, env := store.(client.EnvToken); env {
		return fmt.Errorf("log out: %w", client.ErrReadOnlyToken)
	}
	tok, err := store.Get()
	if err != nil && !errors.Is(err, client.ErrNoToken) {
		return fmt.Errorf("read token: %w", err)
	}
	if tok == "" {
		// Nothing to do, which is what the user wanted: not an error, but said.
		if opts.JSON {
			return printJSON(opts.IO.out, logoutJSON{LoggedOut: true, Server: cfg.Server, NotLoggedIn: true})
		}
		fmt.Fprintf(opts.IO.out, "not logged in to %s\n", cfg.Server)
		return nil
	}
	revokeErr := revoke(ctx, opts, tok)
	revoked := revokeErr == nil
	if err := store.Delete(); err != nil {
		return fmt.Errorf("log out: %w", err)
	}
	var until time.Time
	if revokeErr != nil {
		until = tokenExpiry(tok)
		when := "until it expires"
		if !until.IsZero() {
			when = "until " + until.Local().Format(time.DateTime)
		}
		reason := revokeErr.Error()
		if client.IsUnreachable(revokeErr) {
			reason = "cannot reach " + cfg.Server
		}
		fmt.Fprintf(opts.IO.errOut, "v2m: warning: the server did not revoke the token (%s); it was forgotten here but stays valid %s\n",
			reason, when)
	}
	if opts.JSON {
		out := logoutJSON{LoggedOut: true, Revoked: revoked, Server: cfg.Server}
		if !until.IsZero() {
			out.ValidUntil = until.UTC()
		}
		return printJSON(opts.IO.out, out)
	}
	fmt.Fprintf(opts.IO.out, "logged out of %s\n", cfg.Server)
	return nil
}

// revoke revokes tok on the server. A token the server refuses already (expired, revoked) needs
// no revocation.
func revoke(ctx context.Context, opts *logoutOptions, tok string) error {
	c, err := opts.ClientWithToken(tok)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, revokeTimeout)
	defer cancel()
	if err := c.Logout(ctx); err != nil && !client.IsUnauthorized(err) {
		return err
	}
	return nil
}

// tokenExpiry reads the exp claim of a JWT without checking it (it is our own token, only shown
// to the user); zero when it has none.
func tokenExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp <= 0 {
		return time.Time{}
	}
	return time.Unix(claims.Exp, 0)
}
