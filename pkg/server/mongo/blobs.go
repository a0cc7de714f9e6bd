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
// n, done}) records which parts were started and which are complete, so that nothing needs to
// scan the chunks to answer Parts. One document per part, rather than one array per upload,
// keeps parts written in parallel from touching the same document: FerretDB applies an update
// as a read and a write, so concurrent updates of one document can lose each other's changes.
// CompleteUpload then only adds the files document.
//
// New chunks are inserted, not upserted: an insert is cheap everywhere, while a query on the
// chunks collection scans it on FerretDB. Chunks are deleted first only when the part or file
// was written before.
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

// WritePart stores part n of u from r, which must yield exactly u.PartLen(n) bytes, straight
// into its chunk documents. Fewer or more bytes give EINVALID and leave the part unmarked.
// Writing a part again replaces it. Memory use is one chunk.
func (s *BlobStore) WritePart(ctx context.Context, u *server.Upload, n int, r io.Reader) error {
	oid, err := s.uploadOID(u)
	if err != nil {
		return err
	}
	want := u.PartLen(n)
	if want < 0 {
		return server.Errorf(server.EINVALID, "upload %s has no part %d (it has %d)", u.ID, n, u.Parts())
	}
	_, chunks, _ := s.bucket(server.BucketVideos)

	// Unmark the part and note that it was started; learn whether it was started before.
	again, err := s.startPart(ctx, u.ID, n)
	if err != nil {
		return err
	}
	var first int64
	if u.PartSize > 0 {
		first = int64(n) * (u.PartSize / int64(s.chunkSize))
	}
	if again {
		last := first + (u.PartSize+int64(s.chunkSize)-1)/int64(s.chunkSize)
		filter := bson.D{
			{Key: "files_id", Value: oid},
			{Key: "n", Value: bson.D{{Key: "$gte", Value: first}, {Key: "$lt", Value: last}}},
		}
		if _, err := chunks.DeleteMany(ctx, filter); err != nil {
			return wrap(fmt.Sprintf("upload %s: clear part %d", u.ID, n), err)
		}
	}

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
		if _, err := putChunk(ctx, chunks, oid, i, buf[:size]); err != nil {
			return fmt.Errorf("upload %s: part %d: %w", u.ID, n, err)
		}
		written += size
	}
	var extra [1]byte
	switch m, err := io.ReadFull(r, extra[:]); {
	case m > 0:
		return server.Errorf(server.EINVALID, "part %d of upload %s has more than %d bytes", n, u.ID, want)
	case err != nil && !errors.Is(err, io.EOF):
		return fmt.Errorf("upload %s: read part %d: %w", u.ID, n, err)
	}

	update := bson.D{{Key: "$set", Value: bson.D{{Key: "done", Value: true}}}}
	if _, err := s.parts.UpdateOne(ctx, bson.D{{Key: "_id", Value: partKey(u.ID, n)}}, update); err != nil {
		return wrap(fmt.Sprintf("upload %s: mark part %d", u.ID, n), err)
	}
	return nil
}

// partKey is the _id of the document that tracks part n of upload id.
func partKey(id string, n int) string { return fmt.Sprintf("%s.%d", id, n) }

// startPart records that part n of upload id is being written and is not complete, and
// reports whether it was started before.
func (s *BlobStore) startPart(ctx context.Context, id string, n int) (again bool, err error) {
	update := bson.D{{Key: "$set", Value: bson.D{
		{Key: "upload", Value: id},
		{Key: "n", Value: n},
		{Key: "done", Value: false},
	}}}
	opts := options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.Before)
	for attempt := 0; ; attempt++ {
		err := s.parts.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: partKey(id, n)}}, update, opts).Err()
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, mongo.ErrNoDocuments):
			return false, nil
		case isDup(err) && attempt < 3:
			// Two writes of the part raced to create the document; the loser updates it now.
			continue
		default:
			return false, wrap(fmt.Sprintf("upload %s: start part %d", id, n), err)
		}
	}
}

// putChunk stores chunk n of file oid. It inserts, and replaces only when a chunk n exists
// already (the unique index says so); replaced reports that case.
func putChunk(ctx context.Context, chunks *mongo.Collection, oid bson.ObjectID, n int64, data []byte) (replaced bool, err error) {
	if n > 1<<31-1 {
		return false, server.Errorf(server.ETOOLARGE, "file has too many chunks")
	}
	doc := bson.D{{Key: "files_id", Value: oid}, {Key: "n", Value: int32(n)}, {Key: "data", Value: data}}
	_, err = chunks.InsertOne(ctx, doc)
	if err == nil {
		return false, nil
	}
	if !isDup(err) {
		return false, wrap(fmt.Sprintf("write chunk %d", n), err)
	}
	filter := bson.D{{Key: "files_id", Value: oid}, {Key: "n", Value: int32(n)}}
	if _, err := chunks.ReplaceOne(ctx, filter, doc, options.Replace().SetUpsert(true)); err != nil {
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
// document. Missing parts give ECONFLICT. When u.SHA256 is set, the chunks are read back and
// hashed first; a mismatch discards them and gives EINVALID. Completing twice is harmless.
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
		have, err := s.Parts(ctx, u)
		if err != nil {
			return err
		}
		if missing := u.Parts() - len(have); missing > 0 {
			return server.Errorf(server.ECONFLICT, "upload %s: %d of %d parts missing", u.ID, missing, u.Parts())
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

// discard deletes an upload's chunks and tracking documents.
func (s *BlobStore) discard(ctx context.Context, id string, oid bson.ObjectID, chunks *mongo.Collection) error {
	if _, err := chunks.DeleteMany(ctx, bson.D{{Key: "files_id", Value: oid}}); err != nil {
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
