package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
)

type loginOptions struct {
	IO         *iostreams
	Config     func() (*config, error)
	Client     func() (*client.Client, error) // without a token
	TokenStore func() (client.TokenStore, error)
	JSON       bool

	credentialOptions
}

func newCmdLogin(f *factory, runF func(*loginOptions) error) *cobra.Command {
	opts := &loginOptions{IO: f.io, Config: f.config, Client: f.anonymousClient, TokenStore: f.tokenStore}
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in and store the token (OS keyring, else a 0600 file in the config dir)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.JSON = f.flags.json
			if err := opts.validate(opts.IO); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return loginRun(cmd.Context(), opts)
		},
	}
	addCredentialFlags(cmd, &opts.credentialOptions)
	return cmd
}

func loginRun(ctx context.Context, opts *loginOptions) error {
	email, pw, err := opts.read(ctx, opts.IO)
	if err != nil {
		return err
	}
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	c, err := opts.Client()
	if err != nil {
		return err
	}
	tok, err := c.Login(ctx, email, pw)
	if err != nil {
		return err
	}
	store, err := opts.TokenStore()
	if err != nil {
		return err
	}
	if err := store.Set(tok.Token); err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	email = strings.ToLower(email)
	if opts.JSON {
		return printJSON(opts.IO.out, loginJSON{Email: email, ExpiresAt: tok.ExpiresAt, Server: cfg.Server})
	}
	fmt.Fprintf(opts.IO.out, "logged in to %s as %s (token expires %s)\n", cfg.Server, email,
		tok.ExpiresAt.Local().Format(time.DateTime))
	return nil
}
