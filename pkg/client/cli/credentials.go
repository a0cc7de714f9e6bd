package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// credentialOptions are the inputs register and login share.
type credentialOptions struct {
	Email         string // --email, trimmed; "" to prompt for it
	PasswordStdin bool   // --password-stdin
}

func addCredentialFlags(cmd *cobra.Command, o *credentialOptions) {
	cmd.Flags().StringVar(&o.Email, "email", "", "account email")
	cmd.Flags().BoolVar(&o.PasswordStdin, "password-stdin", false, "read the password from stdin (one trailing newline is removed)")
}

// validate checks the flags against the terminal before anything is read: --password-stdin
// needs --email, and without a terminal to prompt on both are needed.
func (o *credentialOptions) validate(s *iostreams) error {
	o.Email = strings.TrimSpace(o.Email)
	if o.PasswordStdin {
		if o.Email == "" {
			return usageError("--password-stdin needs --email")
		}
		return nil
	}
	if !s.canPrompt() {
		return usageError("stdin is not a terminal: pass --email and --password-stdin")
	}
	return nil
}

// maxPassword bounds what is read from stdin; the server accepts at most 72 bytes.
const maxPassword = 4096

// read returns the email and the password: the password from stdin with --password-stdin,
// else what the user types at the prompts. Ctrl-C at a prompt (ctx ending) returns at once.
func (o *credentialOptions) read(ctx context.Context, s *iostreams) (email, password string, err error) {
	email = o.Email
	if o.PasswordStdin {
		b, err := io.ReadAll(io.LimitReader(s.in, maxPassword+1))
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
	if email == "" {
		fmt.Fprint(s.errOut, "Email: ")
		line, err := interruptible(ctx, func() (string, error) { return bufio.NewReader(s.in).ReadString('\n') })
		if ctx.Err() != nil {
			fmt.Fprintln(s.errOut)
			return "", "", ctx.Err()
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return "", "", fmt.Errorf("read email: %w", err)
		}
		if email = strings.TrimSpace(line); email == "" {
			return "", "", usageError("no email given")
		}
	}
	fmt.Fprint(s.errOut, "Password: ")
	b, err := s.readPassword(ctx)
	fmt.Fprintln(s.errOut)
	if ee := (*exitError)(nil); errors.As(err, &ee) {
		return "", "", err // Ctrl-C
	}
	if err != nil {
		return "", "", fmt.Errorf("read password: %w", err)
	}
	if len(b) == 0 {
		return "", "", usageError("no password given")
	}
	return email, string(b), nil
}
