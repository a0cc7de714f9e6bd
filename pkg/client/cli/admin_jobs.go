package cli

import (
	"github.com/spf13/cobra"

	"github.com/v2m/v2m/internal/admintable"
	"github.com/v2m/v2m/pkg/client"
)

// adminJobCommands are the subcommands of `v2m admin` that manage jobs and dead letters:
// jobs, dead-letters, replay and purge.
func adminJobCommands(f *factory) []*cobra.Command {
	format := func() admintable.Format {
		switch {
		case f.flags.json:
			return admintable.JSON
		case f.io.stdoutTTY:
			return admintable.Table
		}
		return admintable.TSV
	}
	var filter client.AdminJobFilter
	jobs := &cobra.Command{
		Use:   "jobs",
		Short: "List every user's jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.authClient()
			if err != nil {
				return err
			}
			js, err := c.AdminJobs(cmd.Context(), filter)
			if err != nil {
				return err
			}
			return admintable.Jobs(f.io.out, format(), js)
		},
	}
	jobs.Flags().StringVar(&filter.State, "state", "", "only jobs in this state: queued, converting, done or failed")
	jobs.Flags().StringVar(&filter.Owner, "owner", "", "only this user's jobs (an email)")
	jobs.Flags().StringVar(&filter.Since, "since", "", "only jobs created since this time (RFC 3339) or this long ago (24h)")
	jobs.Flags().IntVar(&filter.Limit, "limit", 0, "at most this many jobs (1-1000; default 100)")

	var topic string
	letters := &cobra.Command{
		Use:   "dead-letters",
		Short: "List the messages that failed for good: whose job, why, after how many attempts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.authClient()
			if err != nil {
				return err
			}
			ls, err := c.DeadLetters(cmd.Context(), topic)
			if err != nil {
				return err
			}
			return admintable.Letters(f.io.out, format(), ls)
		},
	}
	var all bool
	replay := &cobra.Command{
		Use:   "replay [ID...|--all]",
		Short: "Replay dead letters: a failed job runs again from queued, a notification is sent again",
		RunE: func(cmd *cobra.Command, ids []string) error {
			if all == (len(ids) > 0) {
				return usageError("give the ids of dead letters, or --all")
			}
			c, err := f.authClient()
			if err != nil {
				return err
			}
			res, err := c.ReplayDeadLetters(cmd.Context(), topic, ids, all)
			if err != nil {
				return err
			}
			return admintable.Replayed(f.io.out, f.io.errOut, format(), res)
		},
	}
	replay.Flags().BoolVar(&all, "all", false, "replay every dead letter (of --topic)")
	purge := &cobra.Command{
		Use:   "purge [ID...]",
		Short: "Remove dead letters for good: those named, or every one (of --topic)",
		RunE: func(cmd *cobra.Command, ids []string) error {
			c, err := f.authClient()
			if err != nil {
				return err
			}
			n, err := c.PurgeDeadLetters(cmd.Context(), topic, ids)
			if err != nil {
				return err
			}
			return admintable.Purged(f.io.out, format(), n)
		},
	}
	for _, cmd := range []*cobra.Command{letters, replay, purge} {
		cmd.Flags().StringVar(&topic, "topic", "", "only this topic's letters: video (conversions) or mp3 (notifications)")
	}
	return []*cobra.Command{jobs, letters, replay, purge}
}
