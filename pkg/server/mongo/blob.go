package mongo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// batchBytes bounds the chunk data of one cursor batch.
const batchBytes = 1 << 20

// blob reads a GridFS file from its chunk documents. It opens a cursor at the chunk that
// holds the read position when it needs one, and keeps reading from it while the reads are
// sequential; a Seek elsewhere makes the next Read open a new cursor.
type blob struct {
	ctx       context.Context // Open's context, for the reads
	chunks    *mongo.Collection
	id        bson.ObjectID
	size      int64
	chunkSize int64
	modTime   time.Time

	pos    int64         // the offset of the next byte Read returns
	cur    *mongo.Cursor // nil until a Read needs it
	next   int64         // the chunk number cur returns next
	buf    []byte        // the unread rest of the current chunk; it points into cur.Current
	closed bool
}

func newBlob(ctx context.Context, chunks *mongo.Collection, id bson.ObjectID, size int64, chunkSize int32, modTime time.Time) *blob {
	return &blob{ctx: ctx, chunks: chunks, id: id, size: size, chunkSize: int64(chunkSize), modTime: modTime}
}

func (b *blob) Size() int64        { return b.size }
func (b *blob) ModTime() time.Time { return b.modTime }

func (b *blob) Read(p []byte) (int, error) {
	if b.closed {
		return 0, os.ErrClosed
	}
	if b.pos >= b.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if len(b.buf) == 0 {
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	b.pos += int64(n)
	return n, nil
}

// fill loads the chunk that holds pos into buf, skipping the bytes before pos.
func (b *blob) fill() error {
	n, skip := b.pos/b.chunkSize, b.pos%b.chunkSize
	if b.cur == nil || b.next != n {
		b.closeCursor()
		filter := bson.D{{Key: "files_id", Value: b.id}, {Key: "n", Value: bson.D{{Key: "$gte", Value: n}}}}
		opts := options.Find().
			SetSort(bson.D{{Key: "n", Value: 1}}).
			SetBatchSize(int32(max(1, batchBytes/b.chunkSize)))
		cur, err := b.chunks.Find(b.ctx, filter, opts)
		if err != nil {
			return wrap(fmt.Sprintf("file %s: read chunks from %d", b.id.Hex(), n), err)
		}
		b.cur, b.next = cur, n
	}
	if !b.cur.Next(b.ctx) {
		if err := b.cur.Err(); err != nil {
			return wrap(fmt.Sprintf("file %s: read chunk %d", b.id.Hex(), n), err)
		}
		return fmt.Errorf("file %s: chunk %d is missing: %w", b.id.Hex(), n, io.ErrUnexpectedEOF)
	}
	raw := b.cur.Current
	got, ok := raw.Lookup("n").AsInt64OK()
	if !ok || got != n {
		return fmt.Errorf("file %s: chunk %d is missing (found %d): %w", b.id.Hex(), n, got, io.ErrUnexpectedEOF)
	}
	_, data, ok := raw.Lookup("data").BinaryOK()
	want := min(b.chunkSize, b.size-n*b.chunkSize)
	if !ok || int64(len(data)) != want {
		return fmt.Errorf("file %s: chunk %d has %d bytes, want %d", b.id.Hex(), n, len(data), want)
	}
	b.buf = data[skip:]
	b.next = n + 1
	return nil
}

func (b *blob) Seek(offset int64, whence int) (int64, error) {
	if b.closed {
		return 0, os.ErrClosed
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = b.pos + offset
	case io.SeekEnd:
		abs = b.size + offset
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	switch d := abs - b.pos; {
	case d == 0:
	case d > 0 && d <= int64(len(b.buf)):
		b.buf = b.buf[d:] // forward within the current chunk
	default:
		b.buf = nil // the next Read loads chunk abs/chunkSize, from this cursor if it is next
	}
	b.pos = abs
	return abs, nil
}

func (b *blob) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	return b.closeCursor()
}

func (b *blob) closeCursor() error {
	b.buf = nil
	if b.cur == nil {
		return nil
	}
	cur := b.cur
	b.cur = nil
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 10*time.Second)
	defer cancel()
	if err := cur.Close(ctx); err != nil {
		return fmt.Errorf("file %s: close cursor: %w", b.id.Hex(), err)
	}
	return nil
}
