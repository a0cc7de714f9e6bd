package daemon

import (
	"io"

	"github.com/spf13/cobra"
)

// adminCommand is `v2md admin`: the operator's shell against the databases directly (--data
// DIR for standalone, the MySQL DSN and MongoDB URI for the services). It works while the
// servers run on the same data.
func adminCommand(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin <command>",
		Short: "Administer users, jobs and dead letters against the databases directly",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(adminUserCommands(stdout, stderr)...)
	cmd.AddCommand(adminJobCommands(stdout, stderr)...)
	return cmd
}
