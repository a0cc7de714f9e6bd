package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
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
		Short: "Forget the stored token",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := a.tokenStore().Delete(); err != nil {
				return fmt.Errorf("log out: %w", err)
			}
			if a.json {
				return a.printJSON(map[string]any{"server": a.server, "logged_out": true})
			}
			fmt.Fprintf(a.d.Stdout, "logged out of %s\n", a.server)
			return nil
		},
	}
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
