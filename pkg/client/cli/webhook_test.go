package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/v2m/v2m/internal/testserver"
)

func TestWebhookCommands(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	e.want(e.run("", "webhook", "list"), 3) // not logged in
	e.login("ann@example.com")

	// Text: the id, URL, events and the secret, with a word on keeping it.
	r := e.run("", "webhook", "add", "https://93.184.215.14/hook?k=1", "--event", "job.done")
	e.want(r, 0)
	for _, want := range []string{"ID:", "URL:    https://93.184.215.14/hook?k=1\n", "Events: job.done\n", "Secret: whsec_"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("add printed %q, want %q in it", r.stdout, want)
		}
	}
	if !strings.Contains(r.stderr, "shown only now") {
		t.Errorf("add's stderr %q does not say the secret is shown once", r.stderr)
	}

	r = e.run("", "webhook", "add", "https://93.184.215.14/other", "--json")
	e.want(r, 0)
	var added struct {
		ID, URL, Secret string
		Events          []string
		CreatedAt       string `json:"created_at"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &added); err != nil || added.ID == "" || !strings.HasPrefix(added.Secret, "whsec_") ||
		strings.Join(added.Events, ",") != "job.done,job.failed" || added.CreatedAt == "" {
		t.Fatalf("add --json: %v %s", err, r.stdout)
	}
	if !strings.HasPrefix(r.stdout, "{\n  \"id\": ") {
		t.Errorf("add --json keys out of order: %s", r.stdout)
	}

	r = e.run("", "webhook", "list", "--json")
	e.want(r, 0)
	var list struct {
		Webhooks []map[string]any `json:"webhooks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Webhooks) != 2 ||
		list.Webhooks[0]["id"] != added.ID && list.Webhooks[1]["id"] != added.ID {
		t.Fatalf("list --json: %v %s", err, r.stdout)
	}
	if strings.Contains(r.stdout, "secret") {
		t.Errorf("list shows secrets: %s", r.stdout)
	}
	r = e.run("", "webhook", "list")
	e.want(r, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var row []string
	for _, l := range lines {
		if strings.HasPrefix(l, added.ID) {
			row = strings.Fields(l) // ID, URL, events, date, time
		}
	}
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "ID URL EVENTS CREATED" ||
		len(row) != 5 || row[1] != "https://93.184.215.14/other" || row[2] != "job.done,job.failed" {
		t.Errorf("list printed:\n%s", r.stdout)
	}

	// Bad input is refused before anything is sent (usage, 2); what only the server can tell
	// (the address) is an error (1) with its message.
	for _, args := range [][]string{
		{"webhook", "add", "ftp://93.184.215.14/"},
		{"webhook", "add", "https://u:p@93.184.215.14/"},
		{"webhook", "add", "https://93.184.215.14/", "--event", "job.started"},
		{"webhook", "add"},
		{"webhook", "rm"},
		{"webhook", "bogus"},
	} {
		e.want(e.run("", args...), 2)
	}
	r = e.run("", "webhook", "add", "http://10.0.0.1/hook")
	e.want(r, 1)
	if !strings.Contains(r.stderr, "10.0.0.1 is a private, loopback or otherwise internal address") {
		t.Errorf("stderr %q", r.stderr)
	}
	r = e.run("", "webhook", "add", "http://10.0.0.1/hook", "--json")
	e.want(r, 1)
	if !strings.Contains(r.stdout, `"code": "invalid"`) {
		t.Errorf("--json error: %s", r.stdout)
	}

	// Someone else's webhook is not found (4), as a removed one.
	// (V2M_TOKEN, as the test keyring holds one token per server.)
	dir := t.TempDir()
	other := &env{t: t, s: s, configDir: dir, vars: map[string]string{"V2M_SERVER": s.URL, "V2M_CONFIG_DIR": dir,
		"V2M_TOKEN": s.Signup(t, "bob@example.com", "password1")}}
	other.want(other.run("", "webhook", "rm", added.ID), 4)
	r = other.run("", "webhook", "list", "--json")
	other.want(r, 0)
	if strings.TrimSpace(r.stdout) != "{\n  \"webhooks\": []\n}" {
		t.Errorf("bob's list: %s", r.stdout)
	}

	r = e.run("", "webhook", "rm", added.ID, "--json")
	e.want(r, 0)
	if strings.TrimSpace(r.stdout) != "{\n  \"id\": \""+added.ID+"\",\n  \"removed\": true\n}" {
		t.Errorf("rm --json printed %s", r.stdout)
	}
	r = e.run("", "webhook", "rm", added.ID)
	e.want(r, 4)
	r = e.run("", "webhook", "list", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Webhooks) != 1 {
		t.Fatalf("list after rm: %v %s", err, r.stdout)
	}
}
