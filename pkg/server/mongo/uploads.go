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

// UploadStore keeps the records of uploads in progress in the collection "uploads".
type UploadStore struct {
	c *mongo.Collection
}

type uploadDoc struct {
	ID         string      `bson:"_id"`
	Owner      string      `bson:"owner"`
	Filename   string      `bson:"filename"`
	Size       int64       `bson:"size"`
	SourceSize int64       `bson:"source_size,omitempty"`
	PartSize   int64       `bson:"part_size"`
	SHA256     string      `bson:"sha256"`
	Options    *optionsDoc `bson:"options,omitempty"`
	CreatedAt  time.Time   `bson:"created_at"`
}

// CreateUpload stores a new upload; a zero CreatedAt is set to now. An existing ID gives
// ECONFLICT.
func (s *UploadStore) CreateUpload(ctx context.Context, u *server.Upload) error {
	if u.ID == "" {
		return server.Errorf(server.EINVALID, "upload has no id")
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now()
	}
	u.CreatedAt = msUTC(u.CreatedAt)
	d := uploadDoc{ID: u.ID, Owner: u.Owner, Filename: u.Filename, Size: u.Size, SourceSize: u.SourceSize,
		PartSize: u.PartSize, SHA256: u.SHA256, Options: toOptionsDoc(u.Options), CreatedAt: u.CreatedAt}
	if _, err := s.c.InsertOne(ctx, d); err != nil {
		if isDup(err) {
			return server.Errorf(server.ECONFLICT, "upload %s already exists", u.ID)
		}
		return wrap(fmt.Sprintf("create upload %s", u.ID), err)
	}
	return nil
}

// Upload returns an upload by id, or ENOTFOUND.
func (s *UploadStore) Upload(ctx context.Context, id string) (*server.Upload, error) {
	var d uploadDoc
	if err := s.c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, server.Errorf(server.ENOTFOUND, "upload %s not found", id)
		}
		return nil, wrap(fmt.Sprintf("find upload %s", id), err)
	}
	return d.upload(), nil
}

func (d *uploadDoc) upload() *server.Upload {
	return &server.Upload{ID: d.ID, Owner: d.Owner, Filename: d.Filename, Size: d.Size, SourceSize: d.SourceSize,
		PartSize: d.PartSize, SHA256: d.SHA256, Options: d.Options.jobOptions(), CreatedAt: d.CreatedAt.UTC()}
}

// StaleUploads returns up to limit uploads created before before, oldest first.
func (s *UploadStore) StaleUploads(ctx context.Context, before time.Time, limit int) ([]*server.Upload, error) {
	opts := options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}}).SetLimit(int64(limit))
	docs, err := findAll[uploadDoc](ctx, s.c, bson.D{{Key: "created_at", Value: bson.D{{Key: "$lt", Value: before.UTC()}}}}, "find stale uploads", opts)
	if err != nil {
		return nil, err
	}
	out := make([]*server.Upload, len(docs))
	for i := range docs {
		out[i] = docs[i].upload()
	}
	return out, nil
}

// DeleteUpload removes the record; a missing one is not an error.
func (s *UploadStore) DeleteUpload(ctx context.Context, id string) error {
	if _, err := s.c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return wrap(fmt.Sprintf("delete upload %s", id), err)
	}
	return nil
}

// OpenUploads counts owner's uploads and sums their sizes.
func (s *UploadStore) OpenUploads(ctx context.Context, owner string) (int, int64, error) {
	opts := options.Find().SetProjection(bson.D{{Key: "size", Value: 1}})
	cur, err := s.c.Find(ctx, bson.D{{Key: "owner", Value: owner}}, opts)
	if err != nil {
		return 0, 0, wrap("uploads of "+owner, err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	n, bytes := 0, int64(0)
	for cur.Next(ctx) {
		var d struct {
			Size int64 `bson:"size"`
		}
		if err := cur.Decode(&d); err != nil {
			return 0, 0, fmt.Errorf("uploads of %s: decode: %w", owner, err)
		}
		n++
		bytes += d.Size
	}
	if err := cur.Err(); err != nil {
		return 0, 0, wrap("uploads of "+owner, err)
	}
	return n, bytes, nil
}
