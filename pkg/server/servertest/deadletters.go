package servertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// TestDeadLetters checks a Queue's server.DeadLetters against its contract. newQueue and opts
// are those of TestQueue.
func TestDeadLetters(t *testing.T, newQueue NewQueue, opts QueueOptions) {
	if opts.Topic == nil {
		opts.Topic = func(*testing.T) string { return "contract-" + server.NewID() }
	}
	// kill publishes bodies on topic and dead-letters every one: a body starting with
	// "retry" fails until its last attempt, any other fails permanently at once. It returns
	// the letters as listed once all are there.
	kill := func(t *testing.T, q server.Queue, topic string, bodies ...string) []server.DeadLetter {
		t.Helper()
		dl := q.(server.DeadLetters)
		publish(t, q, topic, bodies...)
		stop := consume(t, q, topic, 1, func(_ context.Context, d server.Delivery) error {
			if strings.HasPrefix(string(d.Body), "retry") {
				return fmt.Errorf("store down on attempt %d", d.Attempt)
			}
			return server.Permanent(errors.New("no audio track"))
		})
		var got []server.DeadLetter
		deadline := time.Now().Add(patience)
		for {
			var err error
			got, err = dl.DeadLetters(t.Context(), topic, 100)
			if err != nil {
				t.Fatalf("DeadLetters: %v", err)
			}
			if len(got) >= len(bodies) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(bodies) {
			t.Fatalf("%d dead letters in %s, want %d", len(got), topic, len(bodies))
		}
		return got
	}
	video := func(job, owner string) string {
		b, _ := json.Marshal(server.VideoMessage{JobID: job, VideoFID: job, Username: owner})
		return string(b)
	}
	letterIDs := func(ls []server.DeadLetter) []string {
		out := make([]string, len(ls))
		for i, l := range ls {
			out[i] = l.ID
		}
		return out
	}
	list := func(t *testing.T, q server.Queue, topic string) []server.DeadLetter {
		t.Helper()
		ls, err := q.(server.DeadLetters).DeadLetters(t.Context(), topic, 100)
		if err != nil {
			t.Fatalf("DeadLetters: %v", err)
		}
		return ls
	}

	t.Run("ListShowsWhyAndWhose", func(t *testing.T) {
		q, topic, other := newQueue(t), opts.Topic(t), opts.Topic(t)
		job1, job2 := server.NewID(), server.NewID()
		start := time.Now().Add(-time.Second)
		bodies := []string{video(job1, "ann@example.com"), "not json", "retry " + video(job2, "bob@example.com")}
		got := kill(t, q, topic, bodies...)
		kill(t, q, other, "elsewhere")
		want := []struct {
			job, owner, reason string
			attempts           int
		}{
			{job1, "ann@example.com", "no audio track", 1},
			{"", "", "no audio track", 1},
			{"", "", fmt.Sprintf("store down on attempt %d", opts.MaxAttempts), opts.MaxAttempts},
		}
		for i, l := range got {
			w := want[i]
			if l.Topic != topic || string(l.Body) != bodies[i] || l.JobID != w.job || l.Owner != w.owner ||
				!strings.Contains(l.Reason, w.reason) || l.Attempts != w.attempts || l.ID == "" {
				t.Errorf("letter %d = %+v (body %q)\nwant topic %s, body %q, job %q of %q, reason %q, %d attempts",
					i, l, l.Body, topic, bodies[i], w.job, w.owner, w.reason, w.attempts)
			}
			if l.At.Before(start) || l.At.After(time.Now().Add(time.Second)) {
				t.Errorf("letter %d dead at %v, want between %v and now", i, l.At, start)
			}
		}
		// Listing takes nothing away, and shows the same letters in the same order.
		if again := list(t, q, topic); !slices.Equal(letterIDs(again), letterIDs(got)) {
			t.Errorf("second listing = %v, want %v", letterIDs(again), letterIDs(got))
		}
		if two, err := q.(server.DeadLetters).DeadLetters(t.Context(), topic, 2); err != nil || !slices.Equal(letterIDs(two), letterIDs(got)[:2]) {
			t.Errorf("listing with limit 2 = %v, %v; want %v", letterIDs(two), err, letterIDs(got)[:2])
		}
		if o := list(t, q, other); len(o) != 1 || string(o[0].Body) != "elsewhere" {
			t.Errorf("the other topic's letters = %+v, want its one", o)
		}
	})
	t.Run("ReplayIsAFirstAttemptAgain", func(t *testing.T) {
		q, topic := newQueue(t), opts.Topic(t)
		dl := q.(server.DeadLetters)
		got := kill(t, q, topic, "first", "second")
		if err := dl.Replay(t.Context(), topic, got[0].ID); err != nil {
			t.Fatalf("Replay: %v", err)
		}
		left := list(t, q, topic)
		if !slices.Equal(letterIDs(left), letterIDs(got[1:])) {
			t.Errorf("letters after a replay = %v, want %v", letterIDs(left), letterIDs(got[1:]))
		}
		wantCode(t, "Replay of a letter replayed already", dl.Replay(t.Context(), topic, got[0].ID), server.ENOTFOUND)
		wantCode(t, "Replay of an unknown letter", dl.Replay(t.Context(), topic, "nosuch"), server.ENOTFOUND)
		wantCode(t, "Replay under another topic", dl.Replay(t.Context(), opts.Topic(t), got[1].ID), server.ENOTFOUND)
		deliveries := make(chan server.Delivery, 4)
		stop := consume(t, q, topic, 1, func(_ context.Context, d server.Delivery) error { deliveries <- d; return nil })
		d := receive(t, deliveries, "the replayed message")
		if string(d.Body) != "first" || d.Attempt != 1 {
			t.Errorf("replayed delivery %q attempt %d, want %q attempt 1", d.Body, d.Attempt, "first")
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if len(deliveries) != 0 {
			t.Errorf("%d more deliveries, want only the replayed one", len(deliveries))
		}
		if left := list(t, q, topic); !slices.Equal(letterIDs(left), letterIDs(got[1:])) {
			t.Errorf("letters after the replayed message was handled = %v, want %v", letterIDs(left), letterIDs(got[1:]))
		}
	})
	t.Run("PurgeSomeThenAll", func(t *testing.T) {
		q, topic, other := newQueue(t), opts.Topic(t), opts.Topic(t)
		dl := q.(server.DeadLetters)
		got := kill(t, q, topic, numbered("p", 4)...)
		kill(t, q, other, "kept")
		n, err := dl.Purge(t.Context(), topic, []string{got[1].ID, got[3].ID, "nosuch"})
		if err != nil || n != 2 {
			t.Fatalf("Purge of two ids and an unknown one = %d, %v; want 2", n, err)
		}
		if left := list(t, q, topic); !slices.Equal(letterIDs(left), []string{got[0].ID, got[2].ID}) {
			t.Errorf("letters after purging two = %v, want %v", letterIDs(left), []string{got[0].ID, got[2].ID})
		}
		if n, err := dl.Purge(t.Context(), topic, nil); err != nil || n != 2 {
			t.Fatalf("Purge of the rest = %d, %v; want 2", n, err)
		}
		if left := list(t, q, topic); len(left) != 0 {
			t.Errorf("letters after purging all = %v, want none", letterIDs(left))
		}
		if n, err := dl.Purge(t.Context(), topic, nil); err != nil || n != 0 {
			t.Errorf("Purge of an empty topic = %d, %v; want 0", n, err)
		}
		if o := list(t, q, other); len(o) != 1 {
			t.Errorf("the other topic has %d letters after the purge, want 1", len(o))
		}
	})
}
