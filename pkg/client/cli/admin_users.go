package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// adminUserCommands are the subcommands of `v2m admin` that manage users.
func adminUserCommands(f *factory) []*cobra.Command {
	users := &cobra.Command{
		Use:   "users",
		Short: "List every user: email, role, disabled, created",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.authClient()
			if err != nil {
				return err
			}
			list, err := c.AdminUsers(cmd.Context())
			if err != nil {
				return err
			}
			if f.flags.json {
				return printJSON(f.io.out, map[string]any{"users": list})
			}
			tw := tabwriter.NewWriter(f.io.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EMAIL\tROLE\tDISABLED\tCREATED")
			for _, u := range list {
				disabled := "no"
				if u.Disabled {
					disabled = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Email, u.Role, disabled, u.CreatedAt.Local().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	set := func(use, short, done string, disabled bool) *cobra.Command {
		return &cobra.Command{
			Use: use + " EMAIL", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := f.authClient()
				if err != nil {
					return err
				}
				u, err := c.SetUserDisabled(cmd.Context(), args[0], disabled)
				if err != nil {
					return err
				}
				if f.flags.json {
					return printJSON(f.io.out, u)
				}
				fmt.Fprintf(f.io.errOut, "%s %s.\n", u.Email, done)
				return nil
			},
		}
	}
	return []*cobra.Command{users,
		set("disable", "Disable a user: their logins and tokens are refused", "is disabled: their logins and tokens are refused", true),
		set("enable", "Enable a disabled user again", "is enabled again", false),
	}
}
