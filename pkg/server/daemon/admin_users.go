package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/auth"
	"github.com/v2m/v2m/pkg/server/mysql"
	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/wire"
)

// userDBSettings name the users' database of `v2md admin`: standalone's data directory, or
// the auth service's MySQL.
var userDBSettings = []setting{
	{"data", "", "standalone's data directory (its SQLite database)"},
	{"mysql-dsn", "", "the auth service's MySQL data source name, e.g. user:pass@tcp(host:3306)/auth"},
	{"mysql-dsn-file", "", "file holding the MySQL DSN (instead of --mysql-dsn)"},
}

// adminUserCommands are the subcommands of `v2md admin` that manage users (grant, revoke,
// users, disable, enable).
func adminUserCommands(stdout, stderr io.Writer) []*cobra.Command {
	set := func(use, short, done string, change func(ctx context.Context, users server.UserStore, email string) (*server.User, error)) *cobra.Command {
		cmd := &cobra.Command{Use: use + " EMAIL", Short: short, Args: cobra.ExactArgs(1)}
		s := bind(cmd, userDBSettings)
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			return withUsers(cmd.Context(), s, func(ctx context.Context, users server.UserStore) error {
				email, err := auth.NormalizeEmail(args[0])
				if err != nil {
					return badSetting("%s", server.ErrorMessage(err))
				}
				u, err := change(ctx, users, email)
				if server.IsCode(err, server.ENOTFOUND) {
					return fmt.Errorf("no user with email %s", email)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s %s\n", u.Email, done)
				return nil
			})
		}
		return cmd
	}
	role := func(r string) func(ctx context.Context, users server.UserStore, email string) (*server.User, error) {
		return func(ctx context.Context, users server.UserStore, email string) (*server.User, error) {
			return users.SetRole(ctx, email, r)
		}
	}
	disable := func(d bool) func(ctx context.Context, users server.UserStore, email string) (*server.User, error) {
		return func(ctx context.Context, users server.UserStore, email string) (*server.User, error) {
			return users.SetDisabled(ctx, email, d)
		}
	}
	return []*cobra.Command{
		set("grant", "Make a user an administrator (in tokens issued from their next login)",
			"is an administrator: the role is in the tokens issued from their next login", role(server.RoleAdmin)),
		set("revoke", "Make an administrator a plain user again",
			"is a plain user: their tokens lose the admin role within a few seconds", role(server.RoleUser)),
		set("disable", "Disable a user: logins are refused, and so are their tokens",
			"is disabled: logins are refused, and their tokens within a few seconds", disable(true)),
		set("enable", "Enable a disabled user again", "is enabled", disable(false)),
		adminUsersCommand(stdout),
	}
}

func adminUsersCommand(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "List the users: email, role, disabled, created", Args: cobra.NoArgs}
	s := bind(cmd, userDBSettings)
	asJSON := cmd.Flags().Bool("json", false, "print a JSON array")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return withUsers(cmd.Context(), s, func(ctx context.Context, users server.UserStore) error {
			all := []wire.AdminUser{}
			for after := int64(0); ; {
				page, err := users.ListUsers(ctx, after, 500)
				if err != nil {
					return err
				}
				for _, u := range page {
					all = append(all, wire.AdminUser{ID: u.ID, Email: u.Email, Role: u.Role, Disabled: u.Disabled, CreatedAt: u.CreatedAt.UTC()})
					after = u.ID
				}
				if len(page) < 500 {
					break
				}
			}
			if *asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(all)
			}
			w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "EMAIL\tROLE\tDISABLED\tCREATED")
			for _, u := range all {
				disabled := "no"
				if u.Disabled {
					disabled = "yes"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", u.Email, u.Role, disabled, u.CreatedAt.Format(time.RFC3339))
			}
			return w.Flush()
		})
	}
	return cmd
}

// withUsers opens the users' database that s names, runs f on it and closes it. SQLite is
// opened without standalone's lock, so this works while standalone runs on the same data.
func withUsers(ctx context.Context, s *settings, f func(ctx context.Context, users server.UserStore) error) error {
	if err := s.load(); err != nil {
		return err
	}
	dsn, err := s.secret("mysql-dsn")
	if err != nil {
		return err
	}
	data := s.str("data")
	switch {
	case data != "" && dsn != "":
		return badSetting("give --data (standalone) or --mysql-dsn (the services), not both")
	case data != "":
		db, err := sqlite.OpenBeside(ctx, filepath.Join(data, "v2m.db"))
		if err != nil {
			return err
		}
		defer db.Close()
		return f(ctx, db.Users())
	case dsn != "":
		store, err := mysql.Open(ctx, dsn, nil)
		if err != nil {
			return err
		}
		defer store.Close()
		if err := store.Migrate(ctx); err != nil {
			return err
		}
		return f(ctx, store)
	default:
		return badSetting("say which database: --data DIR for standalone, or --mysql-dsn (or --mysql-dsn-file) for the auth service")
	}
}
