package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/v2m/v2m/internal/testserver"
	"github.com/v2m/v2m/pkg/client"
	"github.com/v2m/v2m/pkg/client/cli"
)

// TestWaitTellsStateChangesWithoutTerminal: without a terminal, wait says each change of the
// job's state on stderr, and prints only its result on stdout.
func TestWaitTellsStateChangesWithoutTerminal(t *testing.T) {
	release := make(chan struct{})
	s := testserver.New(t, testserver.Options{Convert: gatedConvert(release)})
	e := newEnv(t, s)
	e.login("a@example.com")
	c := sdk(t, s, storedToken(t, s.URL))
	id := addJob(t, c, "x.mp4", []byte("hold: a video"), false).ID
	heldAt40(t, c, id)
	stream := s.Next(eventsRoute)
	go func() { <-stream; close(release) }()
	r := e.run("", "wait", id)
	e.want(r, 0)
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	want := []string{"waiting for job " + id, "job " + id + " converting", "job " + id + " done"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("stderr:\n%s\nwant the lines %q", r.stderr, want)
	}
	if f := strings.Fields(r.stdout); len(f) != 3 || f[0] != id || f[1] != "done" {
		t.Fatalf("stdout %q", r.stdout)
	}
	r = e.run("", "wait", id, "--json")
	e.want(r, 0)
	var j struct{ ID, State string }
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || j.ID != id || j.State != "done" || r.stderr != "" {
		t.Fatalf("wait --json: %v\nstdout %s\nstderr %q", err, r.stdout, r.stderr)
	}
}

// heldAt40 waits until job id is converting and held at 40 % by gatedConvert.
func heldAt40(t *testing.T, c *client.Client, id string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := c.Watch(ctx, id, func(j *client.Job) {
		if j.State == client.JobConverting && j.Progress == 40 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("job %s never held at 40%%: %v", id, err)
	}
}

// TestInterruptedWaitSaysHowToWaitAgain: Ctrl-C during wait exits 130, and the message says
// that the job goes on and how to wait for it again, also in --json's error.
func TestInterruptedWaitSaysHowToWaitAgain(t *testing.T) {
	s := testserver.New(t, testserver.Options{Convert: gatedConvert(nil)}) // held until the end
	e := newEnv(t, s)
	e.login("a@example.com")
	id := addJob(t, sdk(t, s, storedToken(t, s.URL)), "x.mp4", []byte("hold: a video"), false).ID
	for _, args := range [][]string{{"wait", id}, {"wait", id, "--json"}} {
		ctx, cancel := context.WithCancel(context.Background())
		stream := s.Next(eventsRoute)
		go func() { <-stream; cancel() }() // SIGINT while wait follows the job
		var out, errb bytes.Buffer
		code := cli.Run(ctx, args, cli.Deps{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return e.vars[k] }})
		cancel()
		hint := "interrupted; job " + id + " goes on on the server: run 'v2m wait " + id + "' to wait for it again"
		if code != cli.ExitInterrupted || !strings.HasSuffix("\n"+errb.String(), "\nv2m: "+hint+"\n") {
			t.Fatalf("%v: exit %d, stderr %q; want 130 and the hint", args, code, errb.String())
		}
		if len(args) == 3 {
			var doc struct {
				Error struct {
					Code    string
					Exit    int
					Message string
				}
			}
			if err := json.Unmarshal(out.Bytes(), &doc); err != nil || doc.Error.Code != "interrupted" || doc.Error.Exit != 130 || doc.Error.Message != hint {
				t.Fatalf("--json: %v %s", err, out.String())
			}
		} else if out.Len() != 0 {
			t.Fatalf("stdout %q", out.String())
		}
	}
}
