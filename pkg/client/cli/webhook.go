package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
	"github.com/v2m/v2m/pkg/wire"
)

// webhookJSON is a webhook, as the API returns it: printed by webhook add (with its secret,
// shown that once) and inside webhooksJSON (without).
type webhookJSON struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func newWebhookJSON(w *client.Webhook) webhookJSON {
	events := w.Events
	if events == nil {
		events = []string{}
	}
	return webhookJSON{ID: w.ID, URL: w.URL, Events: events, Secret: w.Secret, CreatedAt: w.CreatedAt}
}

// webhooksJSON is printed by webhook list, oldest first; Webhooks is [] when there are none.
type webhooksJSON struct {
	Webhooks []webhookJSON `json:"webhooks"`
}

// webhookRemovedJSON is printed by webhook rm.
type webhookRemovedJSON struct {
	ID      string `json:"id"`
	Removed bool   `json:"removed"` // always true: a webhook that is not there fails with not_found
}

// newCmdWebhook returns the webhook command and its subcommands.
func newCmdWebhook(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Manage the webhooks that are told when your jobs are done or failed",
		Long: "A webhook is a URL that v2m POSTs to when one of your jobs is done or failed: a JSON body with the\n" +
			"event and the job, signed with the webhook's secret in the X-V2M-Signature header.",
		Args: cobra.NoArgs, // an unknown subcommand is a usage error, not the help
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newCmdWebhookAdd(f, nil), newCmdWebhookList(f, nil), newCmdWebhookRm(f, nil))
	return cmd
}

type webhookAddOptions struct {
	IO     *iostreams
	Client func() (*client.Client, error)
	JSON   bool

	URL    string
	Events []string // nil: every event
}

func newCmdWebhookAdd(f *factory, runF func(*webhookAddOptions) error) *cobra.Command {
	opts := &webhookAddOptions{IO: f.io, Client: f.authClient}
	var events []string
	cmd := &cobra.Command{
		Use:   "add URL",
		Short: "Add a webhook and print its secret (shown only this once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.flags.json
			opts.URL = args[0]
			if _, err := wire.CheckWebhookURL(opts.URL); err != nil {
				return usageError("%s", strings.Replace(err.Error(), `field "url"`, "the URL", 1))
			}
			opts.Events = nil
			if cmd.Flags().Changed("event") {
				for _, e := range events {
					if !slices.Contains(wire.WebhookEvents, e) {
						return usageError("--event %q: the events are %s", e, strings.Join(wire.WebhookEvents, " and "))
					}
				}
				opts.Events, _ = wire.CleanEvents(events) // checked: the one error left is none given
			}
			if runF != nil {
				return runF(opts)
			}
			return webhookAddRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringArrayVar(&events, "event", nil,
		"an event to subscribe to, "+strings.Join(wire.WebhookEvents, " or ")+"; repeat for both (default: both)")
	return cmd
}

func webhookAddRun(ctx context.Context, opts *webhookAddOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	w, err := c.CreateWebhook(ctx, opts.URL, opts.Events)
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.out, newWebhookJSON(w))
	}
	tw := tabwriter.NewWriter(opts.IO.out, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "ID:\t%s\n", w.ID)
	fmt.Fprintf(tw, "URL:\t%s\n", w.URL)
	fmt.Fprintf(tw, "Events:\t%s\n", strings.Join(w.Events, ", "))
	fmt.Fprintf(tw, "Secret:\t%s\n", w.Secret)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(opts.IO.errOut, "Keep the secret: it is shown only now, and it checks the X-V2M-Signature of each delivery.")
	return nil
}

type webhookListOptions struct {
	IO     *iostreams
	Client func() (*client.Client, error)
	JSON   bool
}

func newCmdWebhookList(f *factory, runF func(*webhookListOptions) error) *cobra.Command {
	opts := &webhookListOptions{IO: f.io, Client: f.authClient}
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List your webhooks, oldest first",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.JSON = f.flags.json
			if runF != nil {
				return runF(opts)
			}
			return webhookListRun(cmd.Context(), opts)
		},
	}
}

func webhookListRun(ctx context.Context, opts *webhookListOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	list, err := c.Webhooks(ctx)
	if err != nil {
		return err
	}
	if opts.JSON {
		out := webhooksJSON{Webhooks: make([]webhookJSON, 0, len(list))}
		for i := range list {
			out.Webhooks = append(out.Webhooks, newWebhookJSON(&list[i]))
		}
		return printJSON(opts.IO.out, out)
	}
	tw := tabwriter.NewWriter(opts.IO.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tURL\tEVENTS\tCREATED")
	for _, w := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", w.ID, w.URL, strings.Join(w.Events, ","), w.CreatedAt.Local().Format("2006-01-02 15:04"))
	}
	return tw.Flush()
}

type webhookRmOptions struct {
	IO     *iostreams
	Client func() (*client.Client, error)
	JSON   bool

	ID string
}

func newCmdWebhookRm(f *factory, runF func(*webhookRmOptions) error) *cobra.Command {
	opts := &webhookRmOptions{IO: f.io, Client: f.authClient}
	return &cobra.Command{
		Use:     "rm ID",
		Aliases: []string{"remove"},
		Short:   "Remove a webhook",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.flags.json
			opts.ID = args[0]
			if runF != nil {
				return runF(opts)
			}
			return webhookRmRun(cmd.Context(), opts)
		},
	}
}

func webhookRmRun(ctx context.Context, opts *webhookRmOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	if err := c.DeleteWebhook(ctx, opts.ID); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.out, webhookRemovedJSON{ID: opts.ID, Removed: true})
	}
	fmt.Fprintf(opts.IO.out, "removed webhook %s\n", opts.ID)
	return nil
}
