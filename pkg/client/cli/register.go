package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
)

type registerOptions struct {
	IO     *iostreams
	Client func() (*client.Client, error) // without a token
	JSON   bool

	credentialOptions
}

func newCmdRegister(f *factory, runF func(*registerOptions) error) *cobra.Command {
	opts := &registerOptions{IO: f.io, Client: f.anonymousClient}
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Create an account",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.JSON = f.flags.json
			if err := opts.validate(opts.IO); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return registerRun(cmd.Context(), opts)
		},
	}
	addCredentialFlags(cmd, &opts.credentialOptions)
	return cmd
}

func registerRun(ctx context.Context, opts *registerOptions) error {
	email, pw, err := opts.read(ctx, opts.IO)
	if err != nil {
		return err
	}
	c, err := opts.Client()
	if err != nil {
		return err
	}
	u, err := c.Register(ctx, email, pw)
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.out, registerJSON{ID: u.ID, Email: u.Email, CreatedAt: u.CreatedAt})
	}
	fmt.Fprintf(opts.IO.out, "registered %s; now run 'v2m login'\n", u.Email)
	return nil
}
