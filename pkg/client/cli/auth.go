package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
)

// credFlags are the flags of register and login.
type credFlags struct {
	email         string
	passwordStdin bool
}

func (f *credFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.email, "email", "", "account email")
	cmd.Flags().BoolVar(&f.passwordStdin, "password-stdin", false, "read the password from stdin (one trailing newline is removed)")
}

// maxPassword bounds what is read from stdin; the server accepts at most 72 bytes.
const maxPassword = 4096

// credentials returns the email and password from the flags and stdin, or prompts for them
// on a terminal. Without a terminal, missing credentials are a usage error.
func (a *app) credentials(f *credFlags) (email, password string, err error) {
	email = strings.TrimSpace(f.email)
	if f.passwordStdin {
		if email == "" {
			return "", "", usageError("--password-stdin needs --email")
		}
		b, err := io.ReadAll(io.LimitReader(a.d.Stdin, maxPassword+1))
		if err != nil {
			return "", "", fmt.Errorf("read password from stdin: %w", err)
		}
		if len(b) > maxPassword {
			return "", "", usageError("password on stdin is too long")
		}
		pw := string(b)
		if p, ok := strings.CutSuffix(pw, "\r\n"); ok {
			pw = p
		} else {
			pw = strings.TrimSuffix(pw, "\n")
		}
		if pw == "" {
			return "", "", usageError("empty password on stdin")
		}
		return email, pw, nil
	}
	if !a.d.StdinIsTTY || a.d.ReadPassword == nil {
		return "", "", usageError("stdin is not a terminal: pass --email and --password-stdin")
	}
	if email == "" {
		fmt.Fprint(a.d.Stderr, "Email: ")
		line, err := bufio.NewReader(a.d.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", "", fmt.Errorf("read email: %w", err)
		}
		if email = strings.TrimSpace(line); email == "" {
			return "", "", usageError("no email given")
		}
	}
	fmt.Fprint(a.d.Stderr, "Password: ")
	b, err := a.d.ReadPassword()
	fmt.Fprintln(a.d.Stderr)
	if err != nil {
		return "", "", fmt.Errorf("read password: %w", err)
	}
	if len(b) == 0 {
		return "", "", usageError("no password given")
	}
	return email, string(b), nil
}

func (a *app) registerCmd() *cobra.Command {
	var f credFlags
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Create an account",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			email, pw, err := a.credentials(&f)
			if err != nil {
				return err
			}
			c, err := a.client(false)
			if err != nil {
				return err
			}
			u, err := c.Register(cmd.Context(), email, pw)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(u)
			}
			fmt.Fprintf(a.d.Stdout, "registered %s; now run 'v2m login'\n", u.Email)
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func (a *app) loginCmd() *cobra.Command {
	var f credFlags
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in and store the token (OS keyring, else a 0600 file in the config dir)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			email, pw, err := a.credentials(&f)
			if err != nil {
				return err
			}
			c, err := a.client(false)
			if err != nil {
				return err
			}
			tok, err := c.Login(cmd.Context(), email, pw)
			if err != nil {
				return err
			}
			if err := a.tokenStore().Set(tok.Token); err != nil {
				return fmt.Errorf("store token: %w", err)
			}
			if a.json {
				return a.printJSON(map[string]any{"email": strings.ToLower(email), "server": a.server, "expires_at": tok.ExpiresAt})
			}
			fmt.Fprintf(a.d.Stdout, "logged in to %s as %s (token expires %s)\n", a.server, strings.ToLower(email),
				tok.ExpiresAt.Local().Format(time.DateTime))
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func (a *app) logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke the stored token on the server and forget it",
		Long: "logout asks the server to revoke the token (it is refused from then on) and forgets it. When the\n" +
			"server cannot revoke it (unreachable, or too old to know how) the token is forgotten all the same,\n" +
			"and v2m says that it stays valid until it expires.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store := a.tokenStore()
			if _, env := store.(client.EnvToken); env {
				return fmt.Errorf("log out: %w", client.ErrReadOnlyToken)
			}
			tok, err := store.Get()
			if err != nil && !errors.Is(err, client.ErrNoToken) {
				return fmt.Errorf("read token: %w", err)
			}
			revoked, revokeErr := false, error(nil)
			if tok != "" {
				revokeErr = a.revoke(cmd.Context(), tok)
				revoked = revokeErr == nil
			}
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
					reason = "cannot reach " + a.server
				}
				fmt.Fprintf(a.d.Stderr, "v2m: warning: the server did not revoke the token (%s); it was forgotten here but stays valid %s\n",
					reason, when)
			}
			if a.json {
				out := map[string]any{"server": a.server, "logged_out": true, "revoked": revoked}
				if !until.IsZero() {
					out["valid_until"] = until.UTC()
				}
				return a.printJSON(out)
			}
			fmt.Fprintf(a.d.Stdout, "logged out of %s\n", a.server)
			return nil
		},
	}
}

// revoke revokes tok on the server. A token the server refuses already (expired, revoked) needs
// no revocation.
func (a *app) revoke(ctx context.Context, tok string) error {
	var c *client.Client
	var err error
	if a.d.NewClient != nil {
		c, err = a.d.NewClient(a.server, tok)
	} else {
		c, err = client.New(a.server, client.WithToken(tok), client.WithUserAgent("v2m-cli"))
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
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

func (a *app) whoamiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Print the email of the logged-in account",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(true)
			if err != nil {
				return err
			}
			me, err := c.Me(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(me)
			}
			fmt.Fprintln(a.d.Stdout, me.Email)
			return nil
		},
	}
}
