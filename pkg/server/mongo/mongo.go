// Package mongo implements v2m's stores on MongoDB: jobs, uploads, a GridFS blob store that
// writes upload parts straight into chunk documents, and the log of sent notifications.
//
// The code sticks to portable MongoDB: it runs on MongoDB Atlas in production and on FerretDB
// in tests. GridFS files use the standard layout (<bucket>.files and <bucket>.chunks), so any
// driver or mongofiles can read them.
package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/v2m/v2m/pkg/server"
)

// DefaultChunkSize is the GridFS chunk size used when Config.ChunkSize is 0. It is below the
// 255 KiB of the drivers on purpose: FerretDB returns a fixed number of documents per batch,
// and bigger chunks make large files unreadable there.
const DefaultChunkSize = 128 << 10

// Collection names.
const (
	collJobs          = "jobs"
	collUploads       = "uploads"
	collUploadParts   = "upload_parts"
	collNotifications = "notifications"
	collWebhooks      = "webhooks"
	collLimits        = "limits"
	collLeases        = "leases"
)

// Config says where the database is.
type Config struct {
	// URI is a MongoDB connection string, e.g. mongodb://127.0.0.1:27017/.
	URI string
	// Database is the database name; when empty, the URI's path names it, else "v2m".
	Database string
	// ChunkSize is the GridFS chunk size of new files, in bytes; 0 means DefaultChunkSize.
	// Upload part sizes must be a multiple of it.
	ChunkSize int32
	// Logger receives the adapter's logs; nil discards them.
	Logger *slog.Logger
}

// DB is an open MongoDB database holding v2m's collections.
type DB struct {
	client    *mongo.Client
	db        *mongo.Database
	chunkSize int32
	log       *slog.Logger
	now       func() time.Time // the clock of the job store; tests set it
}

// Open connects to the database, checks that it answers and creates the indexes.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.URI == "" {
		return nil, server.Errorf(server.EINVALID, "mongo: no URI configured")
	}
	cs, err := connstring.ParseAndValidate(cfg.URI)
	if err != nil {
		return nil, server.Errorf(server.EINVALID, "mongo: bad URI: %v", err)
	}
	name := cfg.Database
	if name == "" {
		name = cs.Database
	}
	if name == "" {
		name = "v2m"
	}
	chunk := cfg.ChunkSize
	if chunk == 0 {
		chunk = DefaultChunkSize
	}
	if chunk < 0 || chunk > 15<<20 {
		return nil, server.Errorf(server.EINVALID, "mongo: chunk size %d out of range", chunk)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	opts := options.Client().ApplyURI(cfg.URI).SetAppName("v2m")
	if !cs.ServerSelectionTimeoutSet {
		opts.SetServerSelectionTimeout(10 * time.Second)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: connect: %w", err)
	}
	db := &DB{client: client, db: client.Database(name), chunkSize: chunk, log: log, now: time.Now}
	if err := db.Ping(ctx); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	if err := db.createIndexes(ctx); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	log.Debug("mongo: connected", "database", name, "chunk_size", chunk)
	return db, nil
}

// Close disconnects from the server.
func (db *DB) Close(ctx context.Context) error {
	if err := db.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("mongo: disconnect: %w", err)
	}
	return nil
}

// Ping checks that the server answers, for readiness probes.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.client.Ping(ctx, readpref.Primary()); err != nil {
		return wrap("mongo: ping", err)
	}
	return nil
}

// Database returns the underlying database handle, for tools and tests.
func (db *DB) Database() *mongo.Database { return db.db }

// Jobs returns the job store (collection "jobs").
func (db *DB) Jobs() *JobStore { return &JobStore{c: db.db.Collection(collJobs), now: db.now} }

// Uploads returns the store of uploads in progress (collection "uploads").
func (db *DB) Uploads() *UploadStore { return &UploadStore{c: db.db.Collection(collUploads)} }

// Blobs returns the GridFS blob store (buckets "videos" and "mp3s").
func (db *DB) Blobs() *BlobStore {
	return &BlobStore{db: db.db, parts: db.db.Collection(collUploadParts), chunkSize: db.chunkSize, log: db.log}
}

// SentLog returns the log of sent notifications (collection "notifications").
func (db *DB) SentLog() *SentLog { return &SentLog{c: db.db.Collection(collNotifications)} }

// Webhooks returns the store of users' webhooks (collection "webhooks").
func (db *DB) Webhooks() *WebhookStore { return &WebhookStore{c: db.db.Collection(collWebhooks)} }

// Compile-time checks that the stores implement the domain's interfaces.
var (
	_ server.JobStore     = (*JobStore)(nil)
	_ server.UploadStore  = (*UploadStore)(nil)
	_ server.BlobStore    = (*BlobStore)(nil)
	_ server.SentLog      = (*SentLog)(nil)
	_ server.WebhookStore = (*WebhookStore)(nil)
)

func (db *DB) createIndexes(ctx context.Context) error {
	type index struct {
		coll   string
		keys   bson.D
		unique bool
	}
	idx := []index{
		{collJobs, bson.D{{Key: "owner", Value: 1}, {Key: "created_at", Value: -1}}, false},
		{collJobs, bson.D{{Key: "mp3_fid", Value: 1}}, false},
		{collJobs, bson.D{{Key: "state", Value: 1}, {Key: "updated_at", Value: 1}}, false},
		{collJobs, bson.D{{Key: "finished_at", Value: 1}}, false},
		{collUploads, bson.D{{Key: "owner", Value: 1}}, false},
		{collJobs, bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: -1}}, false},
		{collUploadParts, bson.D{{Key: "upload", Value: 1}, {Key: "n", Value: 1}}, false},
		{collWebhooks, bson.D{{Key: "owner", Value: 1}, {Key: "slot", Value: 1}}, true},
	}
	for _, b := range []string{server.BucketVideos, server.BucketMP3s} {
		// The same indexes, with the same names, that the drivers' GridFS code creates.
		idx = append(idx,
			index{b + ".files", bson.D{{Key: "filename", Value: int32(1)}, {Key: "uploadDate", Value: int32(1)}}, false},
			index{b + ".chunks", bson.D{{Key: "files_id", Value: int32(1)}, {Key: "n", Value: int32(1)}}, true},
		)
	}
	for _, ix := range idx {
		m := mongo.IndexModel{Keys: ix.keys}
		if ix.unique {
			m.Options = options.Index().SetUnique(true)
		}
		if _, err := db.db.Collection(ix.coll).Indexes().CreateOne(ctx, m); err != nil {
			return wrap(fmt.Sprintf("mongo: create index on %s", ix.coll), err)
		}
	}
	return nil
}

// wrap adds context to a driver error, and marks the errors that mean the server cannot be
// reached as EUNAVAILABLE so that the HTTP layer answers 503.
func wrap(op string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, server.Errorf(server.EUNAVAILABLE, "database unavailable"), err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// exists reports whether c holds a document matching filter; op names the lookup in errors.
func exists(ctx context.Context, c *mongo.Collection, filter bson.D, op string) (bool, error) {
	opts := options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})
	err := c.FindOne(ctx, filter, opts).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return false, nil
	default:
		return false, wrap(op, err)
	}
}

// findAll returns the documents of c that match filter, decoded as D; op names the query in
// errors.
func findAll[D any](ctx context.Context, c *mongo.Collection, filter bson.D, op string, opts ...options.Lister[options.FindOptions]) ([]D, error) {
	cur, err := c.Find(ctx, filter, opts...)
	if err != nil {
		return nil, wrap(op, err)
	}
	var docs []D
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrap(op, err)
	}
	return docs, nil
}

func unavailable(err error) bool {
	return mongo.IsNetworkError(err) ||
		errors.As(err, new(topology.ServerSelectionError)) ||
		errors.Is(err, topology.ErrTopologyClosed) ||
		errors.Is(err, mongo.ErrClientDisconnected)
}

// isDup reports whether err is a duplicate key error.
func isDup(err error) bool { return mongo.IsDuplicateKeyError(err) }

// now returns the current time as stored: UTC, millisecond precision.
func now() time.Time { return msUTC(time.Now()) }

// msUTC truncates t to what a BSON date keeps.
func msUTC(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }
