package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/v2m/v2m/internal/admintable"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/server/rabbitmq"
	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/wire"
)

// adminStoreSettings say where v2md admin finds the jobs and the queue: --data for a
// standalone server's data directory, or the gateway's MongoDB and RabbitMQ settings.
var adminStoreSettings = append(append([]setting{
	{"data", "", "a standalone server's data directory (instead of the MongoDB and RabbitMQ settings)"},
	{"json", false, "print JSON"},
}, mongoSettings...), amqpSettings...)

// adminJobCommands are the subcommands of `v2md admin` that manage jobs and dead letters:
// jobs, dead-letters, replay and purge, against the databases and the broker directly.
func adminJobCommands(stdout, stderr io.Writer) []*cobra.Command {
	format := func(s *settings) (admintable.Format, error) {
		js, err := s.flag("json")
		switch {
		case err != nil:
			return 0, err
		case js:
			return admintable.JSON, nil
		}
		if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return admintable.Table, nil
		}
		return admintable.TSV, nil
	}
	// command builds one subcommand whose run gets the Admin over the stores.
	command := func(use, short string, args cobra.PositionalArgs, extra []setting, run func(ctx context.Context, s *settings, a *jobs.Admin, f admintable.Format, args []string) error) *cobra.Command {
		cmd := &cobra.Command{Use: use, Short: short, Args: args}
		s := bind(cmd, adminStoreSettings, extra)
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			if err := s.load(); err != nil {
				return err
			}
			f, err := format(s)
			if err != nil {
				return err
			}
			log, err := newLogger(s, stderr)
			if err != nil {
				return err
			}
			a, closeAll, err := openAdmin(cmd.Context(), s, log)
			if err != nil {
				return err
			}
			defer closeAll()
			return run(cmd.Context(), s, a, f, args)
		}
		return cmd
	}
	topic := []setting{{"topic", "", "only this topic's letters: video (conversions) or mp3 (notifications)"}}
	return []*cobra.Command{
		command("jobs", "List every user's jobs, newest first", cobra.NoArgs, []setting{
			{"state", "", "only jobs in this state: queued, converting, done or failed"},
			{"owner", "", "only this user's jobs (an email)"},
			{"since", "", "only jobs created since this time (RFC 3339) or this long ago (24h)"},
			{"limit", 0, "at most this many jobs (1-1000; default 100)"},
		}, func(ctx context.Context, s *settings, a *jobs.Admin, f admintable.Format, _ []string) error {
			since, err := jobs.ParseSince(s.str("since"), time.Now())
			if err != nil {
				return adminErr(err)
			}
			limit := s.int("limit")
			if s.isSet("limit") && limit == 0 {
				limit = -1 // refused: 0 is not the default when given
			}
			js, err := a.FindJobs(ctx, server.JobFilter{State: server.JobState(s.str("state")), Owner: s.str("owner"), Since: since, Limit: limit})
			if err != nil {
				return adminErr(err)
			}
			return admintable.Jobs(stdout, f, js)
		}),
		command("dead-letters", "List the messages that failed for good: whose job, why, after how many attempts", cobra.NoArgs, topic,
			func(ctx context.Context, s *settings, a *jobs.Admin, f admintable.Format, _ []string) error {
				ls, err := a.DeadLetters(ctx, s.str("topic"))
				if err != nil {
					return adminErr(err)
				}
				return admintable.Letters(stdout, f, ls)
			}),
		command("replay [ID...|--all]", "Replay dead letters: a failed job runs again from queued, a notification is sent again", cobra.ArbitraryArgs,
			append([]setting{{"all", false, "replay every dead letter (of --topic)"}}, topic...),
			func(ctx context.Context, s *settings, a *jobs.Admin, f admintable.Format, ids []string) error {
				all, err := s.flag("all")
				if err != nil {
					return err
				}
				if all == (len(ids) > 0) {
					return badSetting("give the ids of dead letters, or --all")
				}
				res, err := a.Replay(ctx, s.str("topic"), ids, all)
				if err != nil {
					return adminErr(err)
				}
				return admintable.Replayed(stdout, stderr, f, &res)
			}),
		command("limits EMAIL", "Show or set a user's own limits; each flag takes a value, 0 for no limit, or \"default\"", cobra.ExactArgs(1), limitSettings,
			func(ctx context.Context, s *settings, a *jobs.Admin, _ admintable.Format, args []string) error {
				return adminLimits(ctx, s, a.Limits, args[0], stdout)
			}),
		command("purge [ID...]", "Remove dead letters for good: those named, or every one (of --topic)", cobra.ArbitraryArgs, topic,
			func(ctx context.Context, s *settings, a *jobs.Admin, f admintable.Format, ids []string) error {
				n, err := a.Purge(ctx, s.str("topic"), ids, len(ids) == 0)
				if err != nil {
					return adminErr(err)
				}
				return admintable.Purged(stdout, f, n)
			}),
	}
}

// adminErr gives the domain's message of err, which is written for people; other errors as
// they are.
func adminErr(err error) error {
	var e *server.Error
	if errors.As(err, &e) {
		return errors.New(e.Message)
	}
	return err
}

// openAdmin opens the jobs and the queue that the settings name, and returns the Admin over
// them and what closes them.
func openAdmin(ctx context.Context, s *settings, log *slog.Logger) (*jobs.Admin, func(), error) {
	if data := s.str("data"); data != "" {
		db, err := sqlite.OpenBeside(ctx, filepath.Join(data, "v2m.db"))
		if err != nil {
			return nil, nil, err
		}
		q := db.Queue(sqlite.QueueConfig{Logger: log})
		return &jobs.Admin{Jobs: db.Jobs(), Letters: q, Limits: db.Limits(), Logger: log}, func() { db.Close() }, nil
	}
	if err := required(s, "mongo-uri", "amqp-url"); err != nil {
		return nil, nil, fmt.Errorf("%w (or --data for a standalone server)", err)
	}
	db, err := openMongo(ctx, s, log, 0)
	if err != nil {
		return nil, nil, err
	}
	var q *rabbitmq.Queue
	if q, err = dialQueue(ctx, s, log, nil, "v2md-admin"); err != nil {
		db.Close(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	return &jobs.Admin{Jobs: db.Jobs(), Letters: q, Limits: db.Limits(), Logger: log}, func() { q.Close(); db.Close(context.WithoutCancel(ctx)) }, nil
}

// limitSettings are the flags of `v2md admin limits`, one per limit.
var limitSettings = []setting{
	{"quota-bytes", "", "storage quota, like 20GiB"},
	{"max-open-uploads", "", "uploads started and not completed"},
	{"max-active-jobs", "", "jobs queued or converting at once"},
	{"max-duration", "", "longest audio of one job, like 2h"},
}

// adminLimits shows the limits of email, after setting those given.
func adminLimits(ctx context.Context, s *settings, store server.LimitStore, email string, stdout io.Writer) error {
	cur, err := store.UserLimits(ctx, email)
	if err != nil {
		return err
	}
	w := jobs.WireLimits(cur)
	changed := false
	for _, name := range wire.LimitNames {
		if !s.isSet(name) {
			continue
		}
		if err := w.SetLimit(name, s.str(name)); err != nil {
			return badSetting("%v", err)
		}
		changed = true
	}
	if changed {
		l, err := jobs.ParseLimits(w)
		if err != nil {
			return adminErr(err)
		}
		if err := store.SetUserLimits(ctx, email, l); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(w, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}
