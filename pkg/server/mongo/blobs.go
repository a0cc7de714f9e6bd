package mongo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/v2m/v2m/pkg/server"
)

// BlobStore keeps files in the GridFS buckets "videos" and "mp3s", in the standard layout:
// <bucket>.files {_id, length, chunkSize, uploadDate, filename, metadata} and
// <bucket>.chunks {_id, files_id, n, data}.
//
// Upload parts are written straight into the chunk documents of the file they will become:
// with part size P and chunk size C (C divides P), part n holds chunks n*P/C .. n*P/C+P/C-1.
// A small document per part in the collection "upload_parts" ({_id: "<upload>.<n>", upload,
// n, done, src}) records which parts are complete, so that nothing needs to scan the chunks to
// answer Parts. One document per part, rather than one array per upload, keeps parts written
// in parallel from touching the same document: FerretDB applies an update as a read and a
// write, so concurrent updates of one document can lose each other's changes, and a
// conditional update is no compare-and-set there. Only inserts (a unique _id) decide races.
//
// Whoever creates a part's document (an insert: one writer wins) writes the part in place,
// and marks that it is at it in a document of its own ({_id: "<upload>.<n>.w"}) that it deletes
// when it is done, refreshing it while the body arrives; CompleteUpload answers ECONFLICT while
// such a mark is fresh (a stale one is taken for a writer that died).
// Every other writer of that part (a rewrite, or a second writer at the same time) writes its
// chunks under a files_id of its own, an "attempt" recorded as {_id: "<upload>.<n>.<attempt>",
// upload, n, att} before its first chunk; once its body is whole and checked it points the
// part's document at its chunks (src) in a single update, so the last writer to finish wins
// and a part never mixes two bodies. CompleteUpload moves the chunks of a part that an attempt
// won under the file's id (one update of those chunks), deletes the losers' chunks, and adds
// the files document last. The common case, one writer per part, writes every byte once and
// moves nothing.
//
// New chunks are inserted, not upserted: an insert is cheap everywhere, while a query on the
// chunks collection scans it on FerretDB.
type BlobStore struct {
	db        *mongo.Database
	parts     *mongo.Collection
	chunkSize int32
	log       *slog.Logger
}

type filesDoc struct {
	ID         bson.ObjectID `bson:"_id"`
	Length     int64         `bson:"length"`
	ChunkSize  int32         `bson:"chunkSize"`
	UploadDate time.Time     `bson:"uploadDate"`
	Filename   string        `bson:"filename"`
	Metadata   bson.D        `bson:"metadata,omitempty"`
}

// bucket returns the files and chunks collections of a bucket.
func (s *BlobStore) bucket(name string) (files, chunks *mongo.Collection, err error) {
	if name != server.BucketVideos && name != server.BucketMP3s {
		return nil, nil, server.Errorf(server.EINVALID, "no bucket %q", name)
	}
	return s.db.Collection(name + ".files"), s.db.Collection(name + ".chunks"), nil
}

// uploadOID returns the ObjectID of the file u becomes, after checking u's shape.
func (s *BlobStore) uploadOID(u *server.Upload) (bson.ObjectID, error) {
	oid, err := bson.ObjectIDFromHex(u.ID)
	if err != nil {
		return oid, server.Errorf(server.EINVALID, "upload id %q is not 24 hex digits", u.ID)
	}
	if u.Size < 0 {
		return oid, server.Errorf(server.EINVALID, "upload %s: negative size", u.ID)
	}
	if u.Size > 0 && (u.PartSize <= 0 || u.PartSize%int64(s.chunkSize) != 0) {
		return oid, server.Errorf(server.EINVALID,
			"upload %s: part size %d is not a positive multiple of the chunk size %d", u.ID, u.PartSize, s.chunkSize)
	}
	return oid, nil
}

// WritePart stores part n of u from r, which must yield exactly u.PartLen(n) bytes. Fewer or
// more bytes give EINVALID, an error of r is returned wrapped, and either leaves the part as it
// was. Writing a part
// again replaces it as a whole (see BlobStore). Memory use is one chunk.
func (s *BlobStore) WritePart(ctx context.Context, u *server.Upload, n int, r io.Reader) error {
	oid, err := s.uploadOID(u)
	if err != nil {
		return err
	}
	want := u.PartLen(n)
	if want < 0 {
		return server.Errorf(server.EINVALID, "upload %s has no part %d (it has %d)", u.ID, n, u.Parts())
	}
	files, chunks, _ := s.bucket(server.BucketVideos)
	if done, err := fileExists(ctx, files, oid); err != nil {
		return fmt.Errorf("upload %s: %w", u.ID, err)
	} else if done {
		return server.Errorf(server.ECONFLICT, "upload %s is already complete", u.ID)
	}
	first := s.firstChunk(u, n)

	// The writer that creates the part's document writes in place, and says so in a document
	// of its own that only it deletes; any other writer writes under an attempt id of its own.
	key := partKey(u.ID, n)
	doc := bson.D{{Key: "_id", Value: key}, {Key: "upload", Value: u.ID}, {Key: "n", Value: n}, {Key: "done", Value: false}}
	w := bson.D{{Key: "_id", Value: key + ".w"}, {Key: "upload", Value: u.ID}, {Key: "n", Value: n},
		{Key: "writing_since", Value: now()}}
	target := oid
	var alive func() // keeps the in-place mark fresh while the body arrives
	// One round trip for both; the insert is ordered, so the mark is not written when the
	// part's document exists.
	_, err = s.parts.InsertMany(ctx, []any{doc, w})
	var bwe mongo.BulkWriteException
	switch {
	case err == nil:
		last := time.Now()
		alive = func() {
			if time.Since(last) < markRefresh {
				return
			}
			last = time.Now()
			set := bson.D{{Key: "$set", Value: bson.D{{Key: "writing_since", Value: now()}}}}
			if _, err := s.parts.UpdateOne(ctx, bson.D{{Key: "_id", Value: key + ".w"}}, set); err != nil {
				s.log.WarnContext(ctx, "cannot refresh a part's write mark", "upload", u.ID, "part", n, "err", err)
			}
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if _, err := s.parts.DeleteOne(cctx, bson.D{{Key: "_id", Value: key + ".w"}}); err != nil {
				s.log.WarnContext(ctx, "cannot record the end of a part's write", "upload", u.ID, "part", n, "err", err)
			}
		}()
	case errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 && bwe.WriteErrors[0].Index == 0 && isDup(err):
		target = bson.NewObjectID()
		att := bson.D{{Key: "_id", Value: key + "." + target.Hex()}, {Key: "upload", Value: u.ID}, {Key: "n", Value: n},
			{Key: "att", Value: target}}
		if _, err := s.parts.InsertOne(ctx, att); err != nil {
			return wrap(fmt.Sprintf("upload %s: start part %d", u.ID, n), err)
		}
	default:
		return wrap(fmt.Sprintf("upload %s: start part %d", u.ID, n), err)
	}

	if err := s.writeChunks(ctx, chunks, u, n, target, first, want, r, alive); err != nil {
		if errors.Is(err, errTaken) {
			return err
		}
		// Remove at once what nothing will refer to (an attempt's chunks would also go with
		// the upload).
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, derr := chunks.DeleteMany(cctx, s.partFilter(target, u, n)); derr != nil {
			s.log.WarnContext(ctx, "cannot remove the chunks of a failed part", "upload", u.ID, "part", n, "err", derr)
		}
		return err
	}
	set := bson.D{{Key: "$set", Value: bson.D{{Key: "done", Value: true}, {Key: "src", Value: target}}}}
	res, err := s.parts.UpdateOne(ctx, bson.D{{Key: "_id", Value: key}}, set)
	if err != nil {
		return wrap(fmt.Sprintf("upload %s: mark part %d", u.ID, n), err)
	}
	if res.MatchedCount == 0 {
		return server.Errorf(server.ECONFLICT, "upload %s was completed or discarded while part %d was written", u.ID, n)
	}
	return nil
}

// firstChunk returns the number of part n's first chunk.
func (s *BlobStore) firstChunk(u *server.Upload, n int) int64 {
	if u.PartSize <= 0 {
		return 0
	}
	return int64(n) * (u.PartSize / int64(s.chunkSize))
}

// partFilter selects the chunks of part n of u stored under files_id id.
func (s *BlobStore) partFilter(id bson.ObjectID, u *server.Upload, n int) bson.D {
	first := s.firstChunk(u, n)
	last := first + (u.PartSize+int64(s.chunkSize)-1)/int64(s.chunkSize)
	return bson.D{
		{Key: "files_id", Value: id},
		{Key: "n", Value: bson.D{{Key: "$gte", Value: first}, {Key: "$lt", Value: max(last, first+1)}}},
	}
}

// errTaken says that a chunk of the part is there already: only a completion that happened
// since the write began puts chunks where the first writer of a part writes. Those chunks are
// not this writer's, so it leaves them alone.
var errTaken = server.Errorf(server.ECONFLICT, "the upload was completed while the part was written")

// writeChunks reads exactly want bytes from r into chunks first, first+1, ... of files_id id.
// It only inserts: a chunk that exists gives errTaken.
func (s *BlobStore) writeChunks(ctx context.Context, chunks *mongo.Collection, u *server.Upload, n int,
	id bson.ObjectID, first, want int64, r io.Reader, alive func()) error {
	buf := make([]byte, min(int64(s.chunkSize), want))
	var written int64
	for i := first; written < want; i++ {
		size := min(int64(s.chunkSize), want-written)
		m, err := io.ReadFull(r, buf[:size])
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return server.Errorf(server.EINVALID, "part %d of upload %s has %d bytes, want %d",
					n, u.ID, written+int64(m), want)
			}
			return fmt.Errorf("upload %s: read part %d: %w", u.ID, n, err)
		}
		if i > 1<<31-1 {
			return server.Errorf(server.ETOOLARGE, "upload %s: file has too many chunks", u.ID)
		}
		doc := bson.D{{Key: "files_id", Value: id}, {Key: "n", Value: int32(i)}, {Key: "data", Value: buf[:size]}}
		wctx, cancel := chunkContext(ctx)
		_, err = chunks.InsertOne(wctx, doc)
		cancel()
		if err != nil {
			if isDup(err) {
				return errTaken
			}
			return wrap(fmt.Sprintf("upload %s: part %d: write chunk %d", u.ID, n, i), err)
		}
		written += size
		if alive != nil {
			alive()
		}
	}
	var extra [1]byte
	switch m, err := io.ReadFull(r, extra[:]); {
	case m > 0:
		return server.Errorf(server.EINVALID, "part %d of upload %s has more than %d bytes", n, u.ID, want)
	case err != nil && !errors.Is(err, io.EOF):
		return fmt.Errorf("upload %s: read part %d: %w", u.ID, n, err)
	}
	return nil
}

// partKey is the _id of the document that tracks part n of upload id.
func partKey(id string, n int) string { return fmt.Sprintf("%s.%d", id, n) }

// partDoc is a document of "upload_parts": a part's, an attempt's (Att set) or the mark of a
// part's in-place write under way (WritingSince set).
type partDoc struct {
	N            int            `bson:"n"`
	Done         bool           `bson:"done"`
	Src          *bson.ObjectID `bson:"src,omitempty"` // where the part's chunks are; unset: in place
	Att          *bson.ObjectID `bson:"att,omitempty"`
	WritingSince *time.Time     `bson:"writing_since,omitempty"`
	Moving       *time.Time     `bson:"moving,omitempty"` // CompleteUpload is moving its chunks
}

// putChunk stores chunk n of file oid. It inserts, and replaces only when a chunk n exists
// already (the unique index says so); replaced reports that case.
// chunkWriteTimeout bounds one chunk's write.
const chunkWriteTimeout = time.Minute

// chunkContext is the context of one chunk's write: it is not canceled with the request. A
// write canceled on the client's side may still be applied by the server after the
// clean-up that follows a failed upload has run, and leave a chunk that nothing refers to;
// a write that always finishes (or times out) is seen by that clean-up.
func chunkContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), chunkWriteTimeout)
}

func putChunk(ctx context.Context, chunks *mongo.Collection, oid bson.ObjectID, n int64, data []byte) (replaced bool, err error) {
	if n > 1<<31-1 {
		return false, server.Errorf(server.ETOOLARGE, "file has too many chunks")
	}
	doc := bson.D{{Key: "files_id", Value: oid}, {Key: "n", Value: int32(n)}, {Key: "data", Value: data}}
	wctx, cancel := chunkContext(ctx)
	defer cancel()
	_, err = chunks.InsertOne(wctx, doc)
	if err == nil {
		return false, nil
	}
	if !isDup(err) {
		return false, wrap(fmt.Sprintf("write chunk %d", n), err)
	}
	filter := bson.D{{Key: "files_id", Value: oid}, {Key: "n", Value: int32(n)}}
	if _, err := chunks.ReplaceOne(wctx, filter, doc, options.Replace().SetUpsert(true)); err != nil {
		return true, wrap(fmt.Sprintf("rewrite chunk %d", n), err)
	}
	return true, nil
}

// Parts returns the numbers of u's completely stored parts, ascending. It reads only the
// upload's tracking documents.
func (s *BlobStore) Parts(ctx context.Context, u *server.Upload) ([]int, error) {
	filter := bson.D{{Key: "upload", Value: u.ID}, {Key: "done", Value: true}}
	cur, err := s.parts.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "n", Value: 1}}))
	if err != nil {
		return nil, wrap(fmt.Sprintf("upload %s: read parts", u.ID), err)
	}
	var docs []struct {
		N int `bson:"n"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrap(fmt.Sprintf("upload %s: read parts", u.ID), err)
	}
	parts := []int{}
	for _, d := range docs {
		if d.N >= 0 && d.N < u.Parts() {
			parts = append(parts, d.N)
		}
	}
	slices.Sort(parts)
	return slices.Compact(parts), nil
}

// started reports whether any part of upload id was started and not yet discarded.
func (s *BlobStore) started(ctx context.Context, id string) (bool, error) {
	return exists(ctx, s.parts, bson.D{{Key: "upload", Value: id}}, fmt.Sprintf("upload %s: read parts", id))
}

// CompleteUpload turns u's parts into the file u.ID in bucket "videos" by inserting its files
// document. Missing parts give ECONFLICT. A part that an attempt won has its chunks moved
// under the file's id first, and the losing attempts' chunks are deleted. When u.SHA256 is
// set, the chunks are read back and hashed; a mismatch discards them and gives EINVALID.
// Completing twice is harmless.
func (s *BlobStore) CompleteUpload(ctx context.Context, u *server.Upload) error {
	oid, err := s.uploadOID(u)
	if err != nil {
		return err
	}
	files, chunks, _ := s.bucket(server.BucketVideos)
	done, err := fileExists(ctx, files, oid)
	if err != nil {
		return fmt.Errorf("upload %s: %w", u.ID, err)
	}
	if !done {
		docs, err := s.partDocs(ctx, u.ID)
		if err != nil {
			return err
		}
		parts := map[int]*partDoc{}
		var atts []bson.ObjectID
		for _, d := range docs {
			switch {
			case d.Att != nil:
				atts = append(atts, *d.Att)
			case d.WritingSince != nil:
				if time.Since(*d.WritingSince) < markStale {
					return server.Errorf(server.ECONFLICT, "upload %s: part %d is still being written", u.ID, d.N)
				}
			case d.Done && d.N >= 0 && d.N < u.Parts():
				parts[d.N] = d
			}
		}
		if missing := u.Parts() - len(parts); missing > 0 {
			return server.Errorf(server.ECONFLICT, "upload %s: %d of %d parts missing", u.ID, missing, u.Parts())
		}
		for n, d := range parts {
			if d.Src == nil || *d.Src == oid {
				continue
			}
			if err := s.moveInPlace(ctx, chunks, u, n, oid, d); err != nil {
				return err
			}
		}
		if len(atts) > 0 { // every winner is in place now: what is left under attempts lost
			if _, err := chunks.DeleteMany(ctx, bson.D{{Key: "files_id", Value: bson.D{{Key: "$in", Value: atts}}}}); err != nil {
				return wrap(fmt.Sprintf("upload %s: delete superseded parts", u.ID), err)
			}
		}
		if u.SHA256 != "" {
			if err := s.verify(ctx, u, oid, chunks); err != nil {
				return err
			}
		}
		d := filesDoc{
			ID: oid, Length: u.Size, ChunkSize: s.chunkSize, UploadDate: now(), Filename: u.Filename,
			Metadata: bson.D{{Key: "owner", Value: u.Owner}},
		}
		if _, err := files.InsertOne(ctx, d); err != nil && !isDup(err) {
			return wrap(fmt.Sprintf("upload %s: add file", u.ID), err)
		}
	}
	if _, err := s.parts.DeleteMany(ctx, bson.D{{Key: "upload", Value: u.ID}}); err != nil {
		return wrap(fmt.Sprintf("upload %s: drop parts records", u.ID), err)
	}
	return nil
}

// An in-place writer refreshes its mark every markRefresh while its body arrives; a mark older
// than markStale is a writer that died (a gateway killed mid-request), and no longer holds
// CompleteUpload up. A CompleteUpload's mark on a part whose chunks it moves is taken for an
// interrupted completion after moveStale.
const (
	markRefresh = 30 * time.Second
	markStale   = 2 * time.Minute
	moveStale   = 10 * time.Minute
)

// moveInPlace replaces the chunks of part n under oid by the winning attempt's. The part is
// marked while its chunks move: a CompleteUpload that finds the mark of one that stopped
// half way (a crash) cannot tell which chunks are whose, so it discards the part, which is then
// missing and sent again by the client.
func (s *BlobStore) moveInPlace(ctx context.Context, chunks *mongo.Collection, u *server.Upload, n int, oid bson.ObjectID, d *partDoc) error {
	key := bson.D{{Key: "_id", Value: partKey(u.ID, n)}}
	if d.Moving != nil {
		if time.Since(*d.Moving) < moveStale {
			return server.Errorf(server.ECONFLICT, "upload %s is being completed", u.ID)
		}
		for _, id := range []bson.ObjectID{oid, *d.Src} {
			if _, err := chunks.DeleteMany(ctx, s.partFilter(id, u, n)); err != nil {
				return wrap(fmt.Sprintf("upload %s: discard part %d", u.ID, n), err)
			}
		}
		reset := bson.D{{Key: "$set", Value: bson.D{{Key: "done", Value: false}}},
			{Key: "$unset", Value: bson.D{{Key: "src", Value: ""}, {Key: "moving", Value: ""}}}}
		if _, err := s.parts.UpdateOne(ctx, key, reset); err != nil {
			return wrap(fmt.Sprintf("upload %s: discard part %d", u.ID, n), err)
		}
		return server.Errorf(server.ECONFLICT, "upload %s: part %d was lost in an interrupted completion; send it again", u.ID, n)
	}
	if _, err := s.parts.UpdateOne(ctx, key, bson.D{{Key: "$set", Value: bson.D{{Key: "moving", Value: now()}}}}); err != nil {
		return wrap(fmt.Sprintf("upload %s: move part %d", u.ID, n), err)
	}
	if _, err := chunks.DeleteMany(ctx, s.partFilter(oid, u, n)); err != nil {
		return wrap(fmt.Sprintf("upload %s: move part %d", u.ID, n), err)
	}
	move := bson.D{{Key: "$set", Value: bson.D{{Key: "files_id", Value: oid}}}}
	if _, err := chunks.UpdateMany(ctx, bson.D{{Key: "files_id", Value: *d.Src}}, move); err != nil {
		return wrap(fmt.Sprintf("upload %s: move part %d", u.ID, n), err)
	}
	done := bson.D{{Key: "$set", Value: bson.D{{Key: "src", Value: oid}}}, {Key: "$unset", Value: bson.D{{Key: "moving", Value: ""}}}}
	if _, err := s.parts.UpdateOne(ctx, key, done); err != nil {
		return wrap(fmt.Sprintf("upload %s: move part %d", u.ID, n), err)
	}
	return nil
}

// partDocs returns the documents of upload id's parts and attempts.
func (s *BlobStore) partDocs(ctx context.Context, id string) ([]*partDoc, error) {
	cur, err := s.parts.Find(ctx, bson.D{{Key: "upload", Value: id}})
	if err != nil {
		return nil, wrap(fmt.Sprintf("upload %s: read parts", id), err)
	}
	var docs []*partDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrap(fmt.Sprintf("upload %s: read parts", id), err)
	}
	return docs, nil
}

// verify hashes u's chunks in order and compares the hash with u.SHA256; on a mismatch it
// discards the parts.
func (s *BlobStore) verify(ctx context.Context, u *server.Upload, oid bson.ObjectID, chunks *mongo.Collection) error {
	b := newBlob(ctx, chunks, oid, u.Size, s.chunkSize, time.Time{})
	h := sha256.New()
	_, err := io.Copy(h, b)
	b.Close()
	if err != nil {
		return fmt.Errorf("upload %s: hash parts: %w", u.ID, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got == strings.ToLower(u.SHA256) {
		return nil
	}
	s.log.InfoContext(ctx, "upload checksum mismatch, parts discarded", "upload", u.ID, "want", u.SHA256, "got", got)
	if err := s.discard(ctx, u.ID, oid, chunks); err != nil {
		return err
	}
	return server.Errorf(server.EINVALID, "upload %s: SHA-256 of the data is %s, not %s", u.ID, got, u.SHA256)
}

// discard deletes an upload's chunks, its attempts' chunks and its tracking documents.
func (s *BlobStore) discard(ctx context.Context, id string, oid bson.ObjectID, chunks *mongo.Collection) error {
	docs, err := s.partDocs(ctx, id)
	if err != nil {
		return err
	}
	ids := []bson.ObjectID{oid}
	for _, d := range docs {
		if d.Att != nil {
			ids = append(ids, *d.Att)
		}
	}
	if _, err := chunks.DeleteMany(ctx, bson.D{{Key: "files_id", Value: bson.D{{Key: "$in", Value: ids}}}}); err != nil {
		return wrap(fmt.Sprintf("upload %s: delete parts", id), err)
	}
	if _, err := s.parts.DeleteMany(ctx, bson.D{{Key: "upload", Value: id}}); err != nil {
		return wrap(fmt.Sprintf("upload %s: drop parts records", id), err)
	}
	return nil
}

// AbortUpload discards u's parts; no parts is not an error. The file of a completed upload
// is left alone.
func (s *BlobStore) AbortUpload(ctx context.Context, u *server.Upload) error {
	oid, err := bson.ObjectIDFromHex(u.ID)
	if err != nil {
		return nil // no such upload can have parts
	}
	files, chunks, _ := s.bucket(server.BucketVideos)
	started, err := s.started(ctx, u.ID)
	if err != nil {
		return err
	}
	if !started {
		return nil // nothing was written, or the upload completed
	}
	done, err := fileExists(ctx, files, oid)
	if err != nil {
		return fmt.Errorf("upload %s: %w", u.ID, err)
	}
	if done {
		if _, err := s.parts.DeleteMany(ctx, bson.D{{Key: "upload", Value: u.ID}}); err != nil {
			return wrap(fmt.Sprintf("upload %s: drop parts records", u.ID), err)
		}
		return nil
	}
	return s.discard(ctx, u.ID, oid, chunks)
}

// Put stores r as file fid in bucket, replacing a file of that fid, and returns its size.
// Memory use is one chunk.
func (s *BlobStore) Put(ctx context.Context, bucket, fid, filename string, r io.Reader) (int64, error) {
	files, chunks, err := s.bucket(bucket)
	if err != nil {
		return 0, err
	}
	oid, err := bson.ObjectIDFromHex(fid)
	if err != nil {
		return 0, server.Errorf(server.EINVALID, "file id %q is not 24 hex digits", fid)
	}
	exists, err := fileExists(ctx, files, oid)
	if err != nil {
		return 0, fmt.Errorf("put %s/%s: %w", bucket, fid, err)
	}
	if exists {
		if err := removeFile(ctx, files, chunks, oid); err != nil {
			return 0, fmt.Errorf("put %s/%s: %w", bucket, fid, err)
		}
	}

	buf := make([]byte, s.chunkSize)
	var size int64
	var n int64
	dirty := false // chunks of an earlier, unfinished write of fid were overwritten
	fail := func(err error) (int64, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, derr := chunks.DeleteMany(cctx, bson.D{{Key: "files_id", Value: oid}}); derr != nil {
			s.log.WarnContext(ctx, "cannot remove the chunks of a failed write", "bucket", bucket, "fid", fid, "err", derr)
		}
		return 0, fmt.Errorf("put %s/%s: %w", bucket, fid, err)
	}
	for ; ; n++ {
		m, rerr := io.ReadFull(r, buf)
		if m > 0 {
			replaced, err := putChunk(ctx, chunks, oid, n, buf[:m])
			if err != nil {
				return fail(err)
			}
			dirty = dirty || replaced
			size += int64(m)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			if m > 0 {
				n++
			}
			break
		}
		if rerr != nil {
			return fail(fmt.Errorf("read: %w", rerr))
		}
	}
	if dirty {
		filter := bson.D{{Key: "files_id", Value: oid}, {Key: "n", Value: bson.D{{Key: "$gte", Value: n}}}}
		if _, err := chunks.DeleteMany(ctx, filter); err != nil {
			return fail(wrap("remove stale chunks", err))
		}
	}
	d := filesDoc{ID: oid, Length: size, ChunkSize: s.chunkSize, UploadDate: now(), Filename: filename}
	_, err = files.ReplaceOne(ctx, bson.D{{Key: "_id", Value: oid}}, d, options.Replace().SetUpsert(true))
	if err != nil {
		return fail(wrap("add file", err))
	}
	return size, nil
}

// Open opens file fid in bucket for reading, or gives ENOTFOUND. The Blob's reads use ctx.
func (s *BlobStore) Open(ctx context.Context, bucket, fid string) (server.Blob, error) {
	files, chunks, err := s.bucket(bucket)
	if err != nil {
		return nil, err
	}
	oid, err := bson.ObjectIDFromHex(fid)
	if err != nil {
		return nil, server.Errorf(server.ENOTFOUND, "file %s not found", fid)
	}
	var d filesDoc
	if err := files.FindOne(ctx, bson.D{{Key: "_id", Value: oid}}).Decode(&d); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, server.Errorf(server.ENOTFOUND, "file %s not found", fid)
		}
		return nil, wrap(fmt.Sprintf("open %s/%s", bucket, fid), err)
	}
	if d.Length > 0 && d.ChunkSize <= 0 {
		return nil, fmt.Errorf("open %s/%s: bad chunk size %d", bucket, fid, d.ChunkSize)
	}
	return newBlob(ctx, chunks, oid, d.Length, d.ChunkSize, d.UploadDate.UTC()), nil
}

// Delete removes file fid from bucket; a missing file is not an error.
func (s *BlobStore) Delete(ctx context.Context, bucket, fid string) error {
	files, chunks, err := s.bucket(bucket)
	if err != nil {
		return err
	}
	oid, err := bson.ObjectIDFromHex(fid)
	if err != nil {
		return nil // no file can have that id
	}
	if err := removeFile(ctx, files, chunks, oid); err != nil {
		return fmt.Errorf("delete %s/%s: %w", bucket, fid, err)
	}
	return nil
}

// removeFile deletes the files document first, so that readers see no file rather than a
// file with missing chunks, then the chunks.
func removeFile(ctx context.Context, files, chunks *mongo.Collection, oid bson.ObjectID) error {
	if _, err := files.DeleteOne(ctx, bson.D{{Key: "_id", Value: oid}}); err != nil {
		return wrap("delete file", err)
	}
	if _, err := chunks.DeleteMany(ctx, bson.D{{Key: "files_id", Value: oid}}); err != nil {
		return wrap("delete chunks", err)
	}
	return nil
}

func fileExists(ctx context.Context, files *mongo.Collection, oid bson.ObjectID) (bool, error) {
	opts := options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})
	err := files.FindOne(ctx, bson.D{{Key: "_id", Value: oid}}, opts).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return false, nil
	default:
		return false, wrap("look up file", err)
	}
}

// ListBlobs implements server.BlobLister from the files documents: a file whose files
// document is not written yet (an upload or a Put under way) is not listed.
func (s *BlobStore) ListBlobs(ctx context.Context, bucket, after string, limit int) ([]server.BlobInfo, error) {
	files, _, err := s.bucket(bucket)
	if err != nil {
		return nil, err
	}
	filter := bson.D{}
	if after != "" {
		oid, err := bson.ObjectIDFromHex(after)
		if err != nil {
			return nil, server.Errorf(server.EINVALID, "file id %q is not 24 hex digits", after)
		}
		filter = bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: oid}}}}
	}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)).
		SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "length", Value: 1}, {Key: "uploadDate", Value: 1}})
	cur, err := files.Find(ctx, filter, opts)
	if err != nil {
		return nil, wrap(fmt.Sprintf("list %s", bucket), err)
	}
	var docs []filesDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrap(fmt.Sprintf("list %s", bucket), err)
	}
	out := make([]server.BlobInfo, len(docs))
	for i, d := range docs {
		out[i] = server.BlobInfo{FID: d.ID.Hex(), Size: d.Length, ModTime: d.UploadDate.UTC()}
	}
	return out, nil
}

var _ server.BlobLister = (*BlobStore)(nil)
