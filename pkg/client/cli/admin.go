package cli

import "github.com/spf13/cobra"

// newCmdAdmin is `v2m admin`: the administrators' operations over the API. A user who is not
// an administrator gets "not found" for every one of them.
func newCmdAdmin(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin <command>",
		Short: "Manage users, everyone's jobs and dead letters (administrators only)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(adminUserCommands(f)...)
	cmd.AddCommand(adminJobCommands(f)...)
	cmd.AddCommand(newCmdAdminLimits(f, nil))
	return cmd
}
