package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/v2m/v2m/pkg/server"
)

// WebhookStore keeps users' webhooks in the collection "webhooks". Each webhook takes one of
// its owner's slots, 0 to limit-1, and a unique index on (owner, slot) keeps concurrent
// creations within the limit without a transaction: of two that pick the same free slot, the
// index lets one in.
type WebhookStore struct {
	c *mongo.Collection
}

type webhookDoc struct {
	ID        string    `bson:"_id"`
	Owner     string    `bson:"owner"`
	Slot      int       `bson:"slot"`
	URL       string    `bson:"url"`
	Events    []string  `bson:"events"`
	Secret    string    `bson:"secret"`
	CreatedAt time.Time `bson:"created_at"`
}

func (d *webhookDoc) webhook() *server.Webhook {
	return &server.Webhook{ID: d.ID, Owner: d.Owner, URL: d.URL, Events: d.Events, Secret: d.Secret, CreatedAt: d.CreatedAt.UTC()}
}

// CreateWebhook stores w in the lowest free slot of its owner's, or gives ECONFLICT when the
// owner has limit webhooks.
func (s *WebhookStore) CreateWebhook(ctx context.Context, w *server.Webhook, limit int) error {
	if w.ID == "" {
		return server.Errorf(server.EINVALID, "webhook has no id")
	}
	// Each lost race means another creation took a slot, so limit+1 rounds always end.
	for range limit + 1 {
		used, err := s.slots(ctx, w.Owner)
		if err != nil {
			return err
		}
		if len(used) >= limit {
			return server.Errorf(server.ECONFLICT, "%s has %d webhooks, the most allowed", w.Owner, len(used))
		}
		slot := 0
		for used[slot] {
			slot++
		}
		d := webhookDoc{ID: w.ID, Owner: w.Owner, Slot: slot, URL: w.URL, Events: w.Events, Secret: w.Secret, CreatedAt: msUTC(w.CreatedAt)}
		_, err = s.c.InsertOne(ctx, d)
		if err == nil {
			return nil
		}
		if !isDup(err) {
			return wrap(fmt.Sprintf("create webhook %s", w.ID), err)
		}
		taken, err := exists(ctx, s.c, bson.D{{Key: "_id", Value: w.ID}}, fmt.Sprintf("look up webhook %s", w.ID))
		if err != nil {
			return err
		}
		if taken {
			return server.Errorf(server.ECONFLICT, "webhook %s already exists", w.ID)
		}
	}
	return server.Errorf(server.ECONFLICT, "%s has %d webhooks, the most allowed", w.Owner, limit)
}

// slots returns the slots owner's webhooks take.
func (s *WebhookStore) slots(ctx context.Context, owner string) (map[int]bool, error) {
	type slotDoc struct {
		Slot int `bson:"slot"`
	}
	docs, err := findAll[slotDoc](ctx, s.c, bson.D{{Key: "owner", Value: owner}}, "find webhook slots",
		options.Find().SetProjection(bson.D{{Key: "slot", Value: 1}}))
	if err != nil {
		return nil, err
	}
	used := make(map[int]bool, len(docs))
	for _, d := range docs {
		used[d.Slot] = true
	}
	return used, nil
}

// Webhook returns owner's webhook id, or ENOTFOUND.
func (s *WebhookStore) Webhook(ctx context.Context, owner, id string) (*server.Webhook, error) {
	var d webhookDoc
	if err := s.c.FindOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "owner", Value: owner}}).Decode(&d); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, server.Errorf(server.ENOTFOUND, "webhook %s not found", id)
		}
		return nil, wrap(fmt.Sprintf("find webhook %s", id), err)
	}
	return d.webhook(), nil
}

// Webhooks returns owner's webhooks, oldest first.
func (s *WebhookStore) Webhooks(ctx context.Context, owner string) ([]*server.Webhook, error) {
	opts := options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}})
	docs, err := findAll[webhookDoc](ctx, s.c, bson.D{{Key: "owner", Value: owner}}, "find webhooks", opts)
	if err != nil {
		return nil, err
	}
	out := make([]*server.Webhook, len(docs))
	for i := range docs {
		out[i] = docs[i].webhook()
	}
	return out, nil
}

// DeleteWebhook removes owner's webhook id, or gives ENOTFOUND.
func (s *WebhookStore) DeleteWebhook(ctx context.Context, owner, id string) error {
	res, err := s.c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "owner", Value: owner}})
	if err != nil {
		return wrap(fmt.Sprintf("delete webhook %s", id), err)
	}
	if res.DeletedCount == 0 {
		return server.Errorf(server.ENOTFOUND, "webhook %s not found", id)
	}
	return nil
}
