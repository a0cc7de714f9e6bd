package mongo

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/v2m/v2m/pkg/server"
)

// LimitStore keeps users' limits in the collection "limits", one document per owner, keyed by
// the lowercased email.
type LimitStore struct{ c *mongo.Collection }

// Limits returns the database's LimitStore.
func (db *DB) Limits() *LimitStore { return &LimitStore{c: db.db.Collection(collLimits)} }

type limitsDoc struct {
	ID             string `bson:"_id"`
	QuotaBytes     *int64 `bson:"quota_bytes,omitempty"`
	MaxOpenUploads *int   `bson:"max_open_uploads,omitempty"`
	MaxActiveJobs  *int   `bson:"max_active_jobs,omitempty"`
	MaxDurationMS  *int64 `bson:"max_duration_ms,omitempty"`
}

// UserLimits returns owner's limits, the zero Limits when none are set.
func (s *LimitStore) UserLimits(ctx context.Context, owner string) (server.Limits, error) {
	var d limitsDoc
	err := s.c.FindOne(ctx, bson.D{{Key: "_id", Value: strings.ToLower(owner)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return server.Limits{}, nil
	}
	if err != nil {
		return server.Limits{}, wrap("limits of "+owner, err)
	}
	l := server.Limits{QuotaBytes: d.QuotaBytes, MaxOpenUploads: d.MaxOpenUploads, MaxActiveJobs: d.MaxActiveJobs}
	if d.MaxDurationMS != nil {
		v := time.Duration(*d.MaxDurationMS) * time.Millisecond
		l.MaxDuration = &v
	}
	return l, nil
}

// SetUserLimits replaces owner's limits.
func (s *LimitStore) SetUserLimits(ctx context.Context, owner string, l server.Limits) error {
	d := limitsDoc{ID: strings.ToLower(owner), QuotaBytes: l.QuotaBytes, MaxOpenUploads: l.MaxOpenUploads, MaxActiveJobs: l.MaxActiveJobs}
	if l.MaxDuration != nil {
		v := l.MaxDuration.Milliseconds()
		d.MaxDurationMS = &v
	}
	_, err := s.c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, d, options.Replace().SetUpsert(true))
	if err != nil {
		return wrap("store limits of "+owner, err)
	}
	return nil
}

// Lease is a server.Lease kept in the collection "leases": one document per lease name with
// its holder and expiry, taken with a conditional update.
type Lease struct {
	c   *mongo.Collection
	now func() time.Time
}

// Lease returns the database's Lease.
func (db *DB) Lease() *Lease { return &Lease{c: db.db.Collection(collLeases), now: db.now} }

// Acquire takes or renews lease name for holder. It first updates the document if holder has
// it or it expired; when none matched it inserts one, and a duplicate key then means another
// holder has it.
func (l *Lease) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := msUTC(l.now())
	until := now.Add(ttl)
	filter := bson.D{{Key: "_id", Value: name}, {Key: "$or", Value: bson.A{
		bson.D{{Key: "holder", Value: holder}},
		bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lte", Value: now}}}},
	}}}
	res, err := l.c.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "holder", Value: holder}, {Key: "expires_at", Value: until}}}})
	if err != nil {
		return false, wrap("acquire lease "+name, err)
	}
	if res.MatchedCount > 0 {
		return true, nil
	}
	_, err = l.c.InsertOne(ctx, bson.D{{Key: "_id", Value: name}, {Key: "holder", Value: holder}, {Key: "expires_at", Value: until}})
	if isDup(err) {
		return false, nil
	}
	if err != nil {
		return false, wrap("acquire lease "+name, err)
	}
	return true, nil
}

var (
	_ server.LimitStore = (*LimitStore)(nil)
	_ server.Lease      = (*Lease)(nil)
)
