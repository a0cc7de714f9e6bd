package servertest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// NewWebhookStore returns a fresh, empty WebhookStore.
type NewWebhookStore func(t *testing.T) server.WebhookStore

// TestWebhookStore checks a WebhookStore against the contract of server.WebhookStore.
func TestWebhookStore(t *testing.T, newStore NewWebhookStore) {
	base := NewClock().Now()
	hook := func(owner string, age time.Duration, events ...string) *server.Webhook {
		if events == nil {
			events = server.WebhookEvents
		}
		return &server.Webhook{ID: server.NewID(), Owner: owner, URL: "https://hooks.example.com/v2m?k=" + server.NewID(),
			Events: slices.Clone(events), Secret: "whsec_" + server.NewID(), CreatedAt: base.Add(-age)}
	}
	const limit = 3
	t.Run("CreateAndGet", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		for _, w := range []*server.Webhook{hook("ann@example.com", 0), hook("ann@example.com", time.Hour, server.EventJobFailed)} {
			wantCode(t, "CreateWebhook", s.CreateWebhook(ctx, w, limit), "")
			got, err := s.Webhook(ctx, w.Owner, w.ID)
			wantCode(t, "Webhook", err, "")
			sameWebhook(t, "Webhook", got, w)
		}
	})
	t.Run("SomeoneElses", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		w := hook("ann@example.com", 0)
		wantCode(t, "CreateWebhook", s.CreateWebhook(ctx, w, limit), "")
		_, err := s.Webhook(ctx, "bob@example.com", w.ID)
		wantCode(t, "Webhook of someone else's", err, server.ENOTFOUND)
		wantCode(t, "DeleteWebhook of someone else's", s.DeleteWebhook(ctx, "bob@example.com", w.ID), server.ENOTFOUND)
		got, err := s.Webhook(ctx, w.Owner, w.ID)
		wantCode(t, "Webhook after someone else's delete", err, "")
		sameWebhook(t, "Webhook after someone else's delete", got, w)
		_, err = s.Webhook(ctx, w.Owner, server.NewID())
		wantCode(t, "Webhook of an unknown id", err, server.ENOTFOUND)
	})
	t.Run("ListOwnersOnlyOldestFirst", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		mid, old, recent := hook("ann@example.com", time.Hour), hook("ann@example.com", 2*time.Hour), hook("ann@example.com", 0)
		bobs := hook("bob@example.com", 3*time.Hour)
		for _, w := range []*server.Webhook{mid, bobs, old, recent} {
			wantCode(t, "CreateWebhook", s.CreateWebhook(ctx, w, limit), "")
		}
		list, err := s.Webhooks(ctx, "ann@example.com")
		wantCode(t, "Webhooks", err, "")
		want := []*server.Webhook{old, mid, recent}
		if len(list) != len(want) {
			t.Fatalf("Webhooks listed %d, want %d", len(list), len(want))
		}
		for i := range want {
			sameWebhook(t, "listed webhook", list[i], want[i])
		}
		list, err = s.Webhooks(ctx, "carol@example.com")
		if err != nil || len(list) != 0 {
			t.Fatalf("Webhooks of an owner without any = %d webhooks, %v; want none", len(list), err)
		}
	})
	t.Run("DuplicateID", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		w := hook("ann@example.com", 0)
		wantCode(t, "CreateWebhook", s.CreateWebhook(ctx, w, limit), "")
		again := *w
		again.URL, again.Secret = "https://other.example.com/", "whsec_other"
		wantCode(t, "CreateWebhook of an existing id", s.CreateWebhook(ctx, &again, limit), server.ECONFLICT)
		got, err := s.Webhook(ctx, w.Owner, w.ID)
		wantCode(t, "Webhook", err, "")
		sameWebhook(t, "webhook after a duplicate create", got, w)
	})
	t.Run("Limit", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		var made []*server.Webhook
		for range limit {
			w := hook("ann@example.com", 0)
			wantCode(t, "CreateWebhook within the limit", s.CreateWebhook(ctx, w, limit), "")
			made = append(made, w)
		}
		over := hook("ann@example.com", 0)
		wantCode(t, "CreateWebhook over the limit", s.CreateWebhook(ctx, over, limit), server.ECONFLICT)
		_, err := s.Webhook(ctx, over.Owner, over.ID)
		wantCode(t, "Webhook refused for the limit", err, server.ENOTFOUND)
		wantCode(t, "another owner's CreateWebhook", s.CreateWebhook(ctx, hook("bob@example.com", 0), limit), "")
		// Deleting one makes room again, and the room is taken once.
		wantCode(t, "DeleteWebhook", s.DeleteWebhook(ctx, "ann@example.com", made[1].ID), "")
		wantCode(t, "CreateWebhook after a delete", s.CreateWebhook(ctx, over, limit), "")
		wantCode(t, "CreateWebhook over the limit again", s.CreateWebhook(ctx, hook("ann@example.com", 0), limit), server.ECONFLICT)
		list, err := s.Webhooks(ctx, "ann@example.com")
		if err != nil || len(list) != limit {
			t.Fatalf("Webhooks = %d, %v; want %d", len(list), err, limit)
		}
	})
	t.Run("LimitRace", func(t *testing.T) {
		s := newStore(t)
		const n = 8
		won := race(t, "CreateWebhook", n, func(int) error {
			return s.CreateWebhook(context.Background(), hook("ann@example.com", 0), limit)
		})
		list, err := s.Webhooks(t.Context(), "ann@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if won != limit || len(list) != limit {
			t.Errorf("%d of %d concurrent CreateWebhook won and %d are stored, want %d with a limit of %d", won, n, len(list), limit, limit)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		w, kept := hook("ann@example.com", 0), hook("ann@example.com", time.Minute)
		wantCode(t, "CreateWebhook", s.CreateWebhook(ctx, w, limit), "")
		wantCode(t, "CreateWebhook", s.CreateWebhook(ctx, kept, limit), "")
		wantCode(t, "DeleteWebhook", s.DeleteWebhook(ctx, w.Owner, w.ID), "")
		_, err := s.Webhook(ctx, w.Owner, w.ID)
		wantCode(t, "Webhook after its delete", err, server.ENOTFOUND)
		wantCode(t, "DeleteWebhook again", s.DeleteWebhook(ctx, w.Owner, w.ID), server.ENOTFOUND)
		list, err := s.Webhooks(ctx, w.Owner)
		if err != nil || len(list) != 1 || list[0].ID != kept.ID {
			t.Fatalf("Webhooks after a delete = %v, %v; want only %s", list, err, kept.ID)
		}
	})
}

func sameWebhook(t *testing.T, what string, got, want *server.Webhook) {
	t.Helper()
	if got.ID != want.ID || got.Owner != want.Owner || got.URL != want.URL || !slices.Equal(got.Events, want.Events) ||
		got.Secret != want.Secret || !got.CreatedAt.Equal(want.CreatedAt) || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("%s = %+v, want %+v (CreatedAt in UTC)", what, got, want)
	}
}
