package mongo

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// SentLog remembers sent notifications in the collection "notifications", one document per
// key, the key being the _id.
type SentLog struct {
	c *mongo.Collection
}

// Sent reports whether key was marked.
func (s *SentLog) Sent(ctx context.Context, key string) (bool, error) {
	return exists(ctx, s.c, bson.D{{Key: "_id", Value: key}}, fmt.Sprintf("look up notification %q", key))
}

// MarkSent records key with the time it was first marked; marking it again is not an error.
func (s *SentLog) MarkSent(ctx context.Context, key string) error {
	_, err := s.c.InsertOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "sent_at", Value: now()}})
	if err != nil && !isDup(err) {
		return wrap(fmt.Sprintf("mark notification %q", key), err)
	}
	return nil
}
