package cli

import (
	"slices"
	"strings"
	"testing"
)

func TestWebhookAddFlags(t *testing.T) {
	for _, tc := range []struct {
		args   string
		events []string // nil: every event, the server's default
	}{
		{"add https://hooks.example.com/v2m", nil},
		{"add https://hooks.example.com/v2m --event job.failed", []string{"job.failed"}},
		{"add --event job.failed --event job.done https://hooks.example.com/v2m", []string{"job.done", "job.failed"}},
		{"add https://hooks.example.com/v2m --event job.done --event job.done", []string{"job.done"}},
	} {
		o := wantOK(t, parse(t, testEnv{}, newCmdWebhookAdd, strings.Fields(tc.args)...))
		if o.URL != "https://hooks.example.com/v2m" || !slices.Equal(o.Events, tc.events) || (o.Events == nil) != (tc.events == nil) {
			t.Errorf("%q parsed as URL %q, events %q; want events %q", tc.args, o.URL, o.Events, tc.events)
		}
	}
	for _, tc := range []struct{ args, msg string }{
		{"add https://hooks.example.com/ --event job.started", `--event "job.started": the events are job.done and job.failed`},
		{"add https://hooks.example.com/ --event=", `--event "": the events are`},
		{"add ftp://hooks.example.com/", "the URL must be an http or https URL"},
		{"add https://u:p@hooks.example.com/", "the URL must not contain credentials"},
		{"add hooks.example.com", "the URL must be an http or https URL"},
		{"add", "accepts 1 arg(s), received 0"},
		{"add https://a.example/ https://b.example/", "accepts 1 arg(s), received 2"},
	} {
		wantUsage(t, parse(t, testEnv{}, newCmdWebhookAdd, strings.Fields(tc.args)...), tc.msg)
	}
}

func TestWebhookRmFlags(t *testing.T) {
	o := wantOK(t, parse(t, testEnv{}, newCmdWebhookRm, "rm", "65a1f0c2d4e5f60718293a4b", "--json"))
	if o.ID != "65a1f0c2d4e5f60718293a4b" || !o.JSON {
		t.Fatalf("rm parsed as %+v", *o)
	}
	wantUsage(t, parse(t, testEnv{}, newCmdWebhookRm, "rm"), "accepts 1 arg(s), received 0")
}
