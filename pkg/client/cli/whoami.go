package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
)

type whoamiOptions struct {
	IO     *iostreams
	Client func() (*client.Client, error)
	JSON   bool
}

func newCmdWhoami(f *factory, runF func(*whoamiOptions) error) *cobra.Command {
	opts := &whoamiOptions{IO: f.io, Client: f.authClient}
	return &cobra.Command{
		Use:   "whoami",
		Short: "Print the email of the logged-in account (and, on stderr, an administrator's role)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.JSON = f.flags.json
			if runF != nil {
				return runF(opts)
			}
			return whoamiRun(cmd.Context(), opts)
		},
	}
}

func whoamiRun(ctx context.Context, opts *whoamiOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	me, err := c.Me(ctx)
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.out, whoamiJSON{Email: me.Email, Issuer: me.Issuer, ExpiresAt: me.ExpiresAt,
			Role: me.Role, ReadOnly: me.ReadOnly, Personal: me.Personal, Usage: me.Usage})
	}
	fmt.Fprintln(opts.IO.out, me.Email)
	if me.Role == "admin" { // a plain user's role is shown by --json only, so stderr stays quiet
		fmt.Fprintln(opts.IO.errOut, "Role: admin")
	}
	if me.Personal {
		access := "read-write"
		if me.ReadOnly {
			access = "read-only"
		}
		fmt.Fprintf(opts.IO.errOut, "Authenticated by a %s personal token\n", access)
	}
	if u := me.Usage; u != nil && opts.IO.stdoutTTY { // scripts read the email alone, or --json
		fmt.Fprintf(opts.IO.out, "storage     %s\n", ofLimit(humanBytes(u.StoredBytes+u.UploadBytes), u.QuotaBytes > 0, humanBytes(u.QuotaBytes), ""))
		fmt.Fprintf(opts.IO.out, "uploads     %s\n", ofLimit(fmt.Sprint(u.OpenUploads), u.MaxOpenUploads > 0, fmt.Sprint(u.MaxOpenUploads), " open"))
		fmt.Fprintf(opts.IO.out, "jobs        %s\n", ofLimit(fmt.Sprint(u.ActiveJobs), u.MaxActiveJobs > 0, fmt.Sprint(u.MaxActiveJobs), " queued or converting"))
		if u.MaxDuration > 0 {
			fmt.Fprintf(opts.IO.out, "audio       at most %s per job\n", time.Duration(u.MaxDuration*float64(time.Second)).Round(time.Second))
		}
	}
	return nil
}

// ofLimit writes "N of LIMIT what", or "N what (no limit)".
func ofLimit(n string, limited bool, limit, what string) string {
	if !limited {
		return n + what + " (no limit)"
	}
	return n + " of " + limit + what
}
