package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
	"github.com/v2m/v2m/pkg/wire"
)

// newCmdToken returns the token command: personal API tokens for scripts.
func newCmdToken(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage personal API tokens, for scripts and CI (use one in V2M_TOKEN)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newCmdTokenCreate(f), newCmdTokenList(f), newCmdTokenRevoke(f))
	return cmd
}

func newCmdTokenCreate(f *factory) *cobra.Command {
	var name, ttl string
	var readOnly bool
	cmd := &cobra.Command{
		Use:   "create --name NAME [--ttl D] [--read-only]",
		Short: "Create a personal token and print it alone on the last line (shown only this once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usageError("--name is required: say what the token is for, such as --name ci")
			}
			var d time.Duration
			if ttl != "" {
				var ok bool
				if d, ok = wire.ParseTTL(ttl); !ok || d <= 0 {
					return usageError("--ttl %q: give a duration such as 30d, 12h or 90m", ttl)
				}
			}
			c, err := f.authClient()
			if err != nil {
				return err
			}
			t, err := c.CreatePersonalToken(cmd.Context(), name, d, readOnly)
			if err != nil {
				return err
			}
			if f.flags.json {
				return printJSON(f.io.out, t)
			}
			kind := "token"
			if t.ReadOnly {
				kind = "read-only token"
			}
			fmt.Fprintf(f.io.errOut, "Created %s %s (%q), valid until %s. It is shown only this once: store it now.\n",
				kind, t.ID, t.Name, t.ExpiresAt.Local().Format(time.RFC3339))
			fmt.Fprintln(f.io.out, t.Token)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "what the token is for (required, up to 64 characters)")
	cmd.Flags().StringVar(&ttl, "ttl", "", "lifetime, such as 30d, 12h or 90m (default: the server's, 30 days)")
	cmd.Flags().BoolVar(&readOnly, "read-only", false, "the token may only read (GET and HEAD)")
	return cmd
}

func newCmdTokenList(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List your personal tokens (never the tokens themselves)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.authClient()
			if err != nil {
				return err
			}
			list, err := c.PersonalTokens(cmd.Context())
			if err != nil {
				return err
			}
			if f.flags.json {
				return printJSON(f.io.out, wire.PersonalTokenList{Tokens: list})
			}
			if len(list) == 0 {
				fmt.Fprintln(f.io.errOut, "No personal tokens. Create one with: v2m token create --name NAME")
				return nil
			}
			return printTokens(f, list)
		},
	}
}

func printTokens(f *factory, list []client.PersonalToken) error {
	tw := tabwriter.NewWriter(f.io.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tACCESS\tCREATED\tEXPIRES\tLAST USED")
	for _, t := range list {
		access, used := "read-write", "never"
		if t.ReadOnly {
			access = "read-only"
		}
		if t.LastUsedAt != nil {
			used = t.LastUsedAt.Local().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, access, t.CreatedAt.Local().Format(time.RFC3339),
			t.ExpiresAt.Local().Format(time.RFC3339), used)
	}
	return tw.Flush()
}

func newCmdTokenRevoke(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke one of your personal tokens",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.authClient()
			if err != nil {
				return err
			}
			if err := c.RevokePersonalToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			if f.flags.json {
				return printJSON(f.io.out, map[string]any{"id": args[0], "revoked": true})
			}
			fmt.Fprintf(f.io.errOut, "Revoked personal token %s.\n", args[0])
			return nil
		},
	}
}
