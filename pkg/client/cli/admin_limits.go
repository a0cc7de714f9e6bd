package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
	"github.com/v2m/v2m/pkg/wire"
)

type adminLimitsOptions struct {
	IO     *iostreams
	Client func() (*client.Client, error)
	JSON   bool

	Email string
	// Set holds the flags given, by name: a value, "0" for no limit, or "default".
	Set map[string]string
}

// limitFlags are the flags of `admin limits`, each one limit.
var limitFlags = []struct{ name, usage string }{
	{"quota-bytes", `storage quota, like 20GiB`},
	{"max-open-uploads", "uploads started and not completed"},
	{"max-active-jobs", "jobs queued or converting at once"},
	{"max-duration", "longest audio of one job, like 2h"},
}

func newCmdAdminLimits(f *factory, runF func(*adminLimitsOptions) error) *cobra.Command {
	opts := &adminLimitsOptions{IO: f.io, Client: f.authClient}
	cmd := &cobra.Command{
		Use:   "limits EMAIL",
		Short: "Show or set a user's own limits",
		Long: "limits shows the limits an administrator set for a user; with flags it sets them. Each flag takes\n" +
			"a value, 0 for no limit, or \"default\" for the server's default. Limits not named stay as they are.",
		Example: "  v2m admin limits ann@example.com --quota-bytes 50GiB --max-active-jobs 5\n" +
			"  v2m admin limits ann@example.com --max-duration default",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.flags.json
			opts.Email = args[0]
			opts.Set = map[string]string{}
			for _, lf := range limitFlags {
				if cmd.Flags().Changed(lf.name) {
					v, _ := cmd.Flags().GetString(lf.name)
					opts.Set[lf.name] = v
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return adminLimitsRun(cmd.Context(), opts)
		},
	}
	for _, lf := range limitFlags {
		cmd.Flags().String(lf.name, "", lf.usage+`; 0 for no limit, "default" for the server's`)
	}
	return cmd
}

func adminLimitsRun(ctx context.Context, opts *adminLimitsOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	l, err := c.UserLimits(ctx, opts.Email)
	if err != nil {
		return err
	}
	if len(opts.Set) > 0 {
		if err := applyLimits(l, opts.Set); err != nil {
			return err
		}
		if l, err = c.SetUserLimits(ctx, opts.Email, *l); err != nil {
			return err
		}
	}
	if opts.JSON {
		return printJSON(opts.IO.out, l)
	}
	show := func(name, v string) { fmt.Fprintf(opts.IO.out, "%-17s %s\n", name, v) }
	num := func(p *int) string {
		if p == nil {
			return "default"
		}
		return noLimit(int64(*p), strconv.Itoa(*p))
	}
	if l.QuotaBytes == nil {
		show("quota-bytes", "default")
	} else {
		show("quota-bytes", noLimit(*l.QuotaBytes, humanBytes(*l.QuotaBytes)))
	}
	show("max-open-uploads", num(l.MaxOpenUploads))
	show("max-active-jobs", num(l.MaxActiveJobs))
	if l.MaxDuration == nil {
		show("max-duration", "default")
	} else {
		show("max-duration", noLimit(int64(*l.MaxDuration), time.Duration(*l.MaxDuration*float64(time.Second)).String()))
	}
	return nil
}

func noLimit(n int64, s string) string {
	if n == 0 {
		return "no limit"
	}
	return s
}

// applyLimits sets on l the limits named in set.
func applyLimits(l *wire.Limits, set map[string]string) error {
	for name, v := range set {
		if err := l.SetLimit(name, v); err != nil {
			return usageError("%v", err)
		}
	}
	return nil
}
