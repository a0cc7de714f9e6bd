package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/v2m/v2m/pkg/client/reduce"
	"github.com/v2m/v2m/pkg/wire"
)

// DefaultParallel is how many parts Upload sends at once unless told otherwise.
const DefaultParallel = 4

// partAttempts is how many times a part is sent before Upload gives up on it.
const partAttempts = 4

// UploadOptions tune Upload.
type UploadOptions struct {
	// Parallel is how many parts are sent at once; 0 means DefaultParallel.
	Parallel int
	// Progress, when not nil, is called with the bytes the server has (or is receiving) and
	// the file's size. Calls are serialised but may come from different goroutines.
	Progress func(done, total int64)
	// State, when not nil, remembers the upload so that a rerun after an interruption sends
	// only the parts the server does not have yet.
	State StateStore
	// SHA256 makes Upload read the whole file once more to send its SHA-256, which the
	// server checks when the upload completes.
	SHA256 bool
	// Prepared, when not nil, is called once before anything is sent, with the bytes to send
	// and the file's size: less than the size when only its audio goes.
	Prepared func(send, size int64)
	// Full sends the whole file. Without it, Upload sends only what the server needs of an
	// MP4, QuickTime, Matroska or WebM video (its audio, tags, chapters, pictures and one
	// keyframe for the cover; package reduce), and the whole of any other file.
	Full bool
	// Options are the job's MP3 options; nil gives the server's defaults. Upload checks them
	// before it sends anything. They are part of what identifies an upload for resuming: a
	// rerun with other options starts a new upload (and makes another job) instead of
	// completing the interrupted one with the options it was started with.
	Options *JobOptions
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Upload sends the file at path as a chunked upload and completes it, returning the queued
// job. Unless opts.Full, a video is sent as the smaller file that package reduce makes of
// it: the job's Size is then what was sent, and its SourceSize the file's size. See
// UploadOptions for the job's options, resuming, parallelism and progress. Bad options give
// a *wire.OptionError before anything is sent.
func (c *Client) Upload(ctx context.Context, path string, opts UploadOptions) (*Job, error) {
	if err := opts.Options.Check(); err != nil {
		return nil, fmt.Errorf("upload %s: %w", path, err)
	}
	optKey, err := optionsKey(opts.Options)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", path, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("upload %s: not a regular file", path)
	}
	key := UploadKey{Server: NormalizeServer(c.BaseURL), Path: abs, Size: fi.Size(), ModTime: fi.ModTime(), Options: optKey}
	var src io.ReaderAt = f
	size := fi.Size()
	if !opts.Full {
		lay, err := reduce.Reduce(ctx, f, fi.Size())
		switch {
		case err == nil && lay.Size() < fi.Size()/10*9: // worth it (not an audio file already)
			// The same file gives the same reduced bytes, so a rerun resumes this upload.
			src, size, key.Sent = lay.Open(f), lay.Size(), lay.Size()
		case err == nil, errors.Is(err, reduce.ErrUnsupported):
			// Not a file we can make smaller with confidence: send it whole.
		case ctx.Err() != nil:
			return nil, fmt.Errorf("upload %s: %w", path, ctx.Err())
		default:
			return nil, fmt.Errorf("upload %s: %w", path, err)
		}
	}

	if opts.Prepared != nil {
		opts.Prepared(size, fi.Size())
	}
	up, done, err := c.resumeOrCreate(ctx, src, size, key, opts)
	if err != nil {
		return nil, err
	}
	if done != nil {
		return done, nil
	}
	for round := 0; ; round++ {
		if err := c.sendParts(ctx, src, up, opts); err != nil {
			return nil, fmt.Errorf("upload %s: %w", path, err)
		}
		job, err := c.completeRetrying(ctx, up.ID)
		if err == nil {
			if opts.State != nil {
				_ = opts.State.Forget(key)
			}
			return job, nil
		}
		// 409: parts are missing after all (e.g. the server lost some); fetch the list and
		// send them once more.
		if StatusOf(err) == http.StatusConflict && round == 0 {
			if up, err = c.UploadInfo(ctx, up.ID); err == nil {
				continue
			}
		}
		if st := StatusOf(err); st == http.StatusBadRequest || st == http.StatusNotFound {
			// A checksum mismatch discards the upload; a missing one cannot be resumed.
			if opts.State != nil {
				_ = opts.State.Forget(key)
			}
		}
		return nil, fmt.Errorf("upload %s: %w", path, err)
	}
}

// completeRetrying completes an upload, retrying when the answer is lost on the way
// (completing is idempotent on the server).
func (c *Client) completeRetrying(ctx context.Context, id string) (*Job, error) {
	for attempt := 1; ; attempt++ {
		job, err := c.complete(ctx, id)
		if err == nil || attempt == 4 || !(IsUnreachable(err) || StatusOf(err) >= 500 || isNetErr(err)) || c.waitedOut(err) {
			return job, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
		}
	}
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// resumeOrCreate returns the upload remembered for key if the server still has it, the job
// when that upload was completed already (the answer to complete was lost), or a new upload
// of the size bytes of src.
func (c *Client) resumeOrCreate(ctx context.Context, src io.ReaderAt, size int64, key UploadKey, opts UploadOptions) (*UploadInfo, *Job, error) {
	if opts.State != nil {
		id, err := opts.State.Load(key)
		if err != nil {
			return nil, nil, fmt.Errorf("upload %s: read upload state: %w", key.Path, err)
		}
		if id != "" {
			up, err := c.UploadInfo(ctx, id)
			switch {
			case err == nil && up.Size == size && up.Filename == filepath.Base(key.Path):
				return up, nil, nil
			case IsNotFound(err):
				job, cerr := c.complete(ctx, id)
				if cerr == nil { // completed before
					_ = opts.State.Forget(key)
					return nil, job, nil
				}
				if !IsNotFound(cerr) { // cannot tell yet; a new upload could duplicate the job
					return nil, nil, fmt.Errorf("upload %s: %w", key.Path, cerr)
				}
				_ = opts.State.Forget(key) // gone: start over
			case err == nil:
				_ = opts.State.Forget(key) // not the same file: start over
			default:
				return nil, nil, fmt.Errorf("upload %s: %w", key.Path, err)
			}
		}
	}
	in := wire.NewUpload{Filename: filepath.Base(key.Path), Size: size, Options: opts.Options}
	if key.Sent > 0 {
		in.SourceSize = key.Size
	}
	if opts.SHA256 {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(src, 0, size)); err != nil {
			return nil, nil, fmt.Errorf("upload %s: hash: %w", key.Path, err)
		}
		in.SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	var up UploadInfo
	if err := c.doJSON(ctx, http.MethodPost, "/v1/uploads", in, &up, nil); err != nil {
		return nil, nil, fmt.Errorf("upload %s: create upload: %w", key.Path, err)
	}
	if up.ID == "" || up.Parts < 1 || (up.PartSize <= 0 && up.Size > 0) || up.Size != size {
		return nil, nil, fmt.Errorf("upload %s: the server answered an invalid upload (id %q, %d parts of %d bytes, size %d)",
			key.Path, up.ID, up.Parts, up.PartSize, up.Size)
	}
	if opts.State != nil {
		if err := opts.State.Save(key, up.ID); err != nil {
			return nil, nil, fmt.Errorf("upload %s: save upload state: %w", key.Path, err)
		}
	}
	return &up, nil, nil
}

// UploadInfo returns an upload in progress (GET /v1/uploads/{id}).
func (c *Client) UploadInfo(ctx context.Context, id string) (*UploadInfo, error) {
	var up UploadInfo
	if err := c.doJSON(ctx, http.MethodGet, "/v1/uploads/"+url.PathEscape(id), nil, &up, nil); err != nil {
		return nil, fmt.Errorf("get upload %s: %w", id, err)
	}
	return &up, nil
}

// AbortUpload discards an upload in progress (DELETE /v1/uploads/{id}).
func (c *Client) AbortUpload(ctx context.Context, id string) error {
	if err := c.doJSON(ctx, http.MethodDelete, "/v1/uploads/"+url.PathEscape(id), nil, nil, nil); err != nil {
		return fmt.Errorf("delete upload %s: %w", id, err)
	}
	return nil
}

func (c *Client) complete(ctx context.Context, id string) (*Job, error) {
	var j Job
	if err := c.doJSON(ctx, http.MethodPost, "/v1/uploads/"+url.PathEscape(id)+"/complete", nil, &j, nil); err != nil {
		return nil, fmt.Errorf("complete upload %s: %w", id, err)
	}
	return &j, nil
}

// progressCounter adds up bytes sent by all workers and reports them serially.
type progressCounter struct {
	mu    sync.Mutex
	done  atomic.Int64
	total int64
	fn    func(done, total int64)
}

func (p *progressCounter) add(n int64) {
	d := p.done.Add(n)
	if p.fn != nil {
		p.mu.Lock()
		p.fn(d, p.total)
		p.mu.Unlock()
	}
}

// sendParts sends the parts of up that the server does not list as received.
func (c *Client) sendParts(ctx context.Context, f io.ReaderAt, up *UploadInfo, opts UploadOptions) error {
	have := make(map[int]bool, len(up.Received))
	pc := &progressCounter{total: up.Size, fn: opts.Progress}
	var already int64
	for _, n := range up.Received {
		if l := up.PartLen(n); l >= 0 && !have[n] {
			have[n] = true
			already += l
		}
	}
	var todo []int
	for n := range up.Parts {
		if !have[n] {
			todo = append(todo, n)
		}
	}
	pc.add(already)
	if len(todo) == 0 {
		return nil
	}
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	parallel = min(parallel, len(todo))

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for n := range next {
				if err := c.sendPart(ctx, f, up, n, pc); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
feed:
	for _, n := range todo {
		select {
		case next <- n:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// sendPart sends part n, retrying network errors and 5xx answers with backoff.
func (c *Client) sendPart(ctx context.Context, f io.ReaderAt, up *UploadInfo, n int, pc *progressCounter) error {
	off, size := int64(n)*up.PartSize, up.PartLen(n)
	h := crc32.New(crcTable)
	if _, err := io.Copy(h, io.NewSectionReader(f, off, size)); err != nil {
		return fmt.Errorf("read part %d: %w", n, err)
	}
	sum := fmt.Sprintf("%08x", h.Sum32())
	path := "/v1/uploads/" + url.PathEscape(up.ID) + "/parts/" + strconv.Itoa(n)
	var err error
	start, putOff := time.Now(), 0 // putOff: the sends answered 503 or 429, which do not count
	for attempt := 1; attempt <= partAttempts; attempt++ {
		if attempt > 1 {
			if e := sleepCtx(ctx, backoff(attempt-1)); e != nil {
				return fmt.Errorf("part %d: %w (after %w)", n, e, err)
			}
		}
		body := &countingReader{r: io.NewSectionReader(f, off, size), fn: pc.add}
		err = c.putPart(ctx, path, body, size, sum)
		if err == nil {
			return nil
		}
		body.abort() // the server did not keep it
		if c.retryLater(ctx, err, start, putOff+1) {
			putOff++
			attempt-- // waited as the server asked; send again without a backoff of its own
			continue
		}
		if !transient(ctx, err) {
			break
		}
	}
	return fmt.Errorf("part %d: %w", n, err)
}

func (c *Client) putPart(ctx context.Context, path string, cr *countingReader, size int64, sum string) error {
	var body io.Reader = http.NoBody // ContentLength 0 with a non-nil body would mean "unknown"
	if size > 0 {
		body = cr
	}
	req, err := c.newRequest(ctx, http.MethodPut, path, body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Part-CRC32C", sum)
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.Body.Close()
}

// countingReader reports the bytes read from a part's SectionReader as progress. abort takes
// them back when the part failed; the transport may still be reading afterwards, so reads
// after abort are not counted.
type countingReader struct {
	r    io.Reader
	fn   func(int64)
	mu   sync.Mutex
	n    int64
	dead bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.mu.Lock()
		if !c.dead {
			c.n += int64(n)
			c.fn(int64(n))
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *countingReader) abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dead = true
	c.fn(-c.n)
	c.n = 0
}

// UploadKey identifies a local file version on a server, with the options of its job, for
// resuming its upload.
type UploadKey struct {
	Server  string    // normalised server URL
	Path    string    // absolute path
	Size    int64     // bytes
	ModTime time.Time // modification time
	Options string    // the job's options as JSON; "" for the defaults
	// Sent is the size of the smaller file made of it that is uploaded instead (package
	// reduce); 0 when the file is uploaded whole.
	Sent int64
}

// String is the key as the state file keeps it. Uploads of default options have the key they
// had before options existed, so that those remembered then still resume.
func (k UploadKey) String() string {
	s := fmt.Sprintf("%s|%s|%d|%d", k.Server, k.Path, k.Size, k.ModTime.UnixNano())
	if k.Options != "" {
		s += "|" + k.Options
	}
	if k.Sent > 0 {
		s += fmt.Sprintf("|sent=%d", k.Sent)
	}
	return s
}

// optionsKey returns the options as UploadKey keeps them: their JSON, "" for none.
func optionsKey(o *JobOptions) (string, error) {
	if o == nil {
		return "", nil
	}
	b, err := json.Marshal(o)
	if err != nil {
		return "", fmt.Errorf("encode options: %w", err)
	}
	if string(b) == "{}" {
		return "", nil
	}
	return string(b), nil
}

// StateStore remembers which upload holds which local file, so that an interrupted upload
// can be resumed.
type StateStore interface {
	// Load returns the upload id saved for key, or "" when there is none.
	Load(key UploadKey) (string, error)
	// Save remembers id for key.
	Save(key UploadKey, id string) error
	// Forget removes key; a missing key is not an error.
	Forget(key UploadKey) error
}

// FileState is a StateStore kept in a small JSON file (mode 0600). It is safe for concurrent
// use within one process.
type FileState struct {
	Path string
	mu   sync.Mutex
}

// NewFileState returns a FileState in the file at path (created when first needed).
func NewFileState(path string) *FileState { return &FileState{Path: path} }

type stateEntry struct {
	ID      string    `json:"id"`
	Server  string    `json:"server"`
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
	Options string    `json:"options,omitempty"`
	Saved   time.Time `json:"saved"`
}

type stateFile struct {
	Uploads map[string]stateEntry `json:"uploads"`
}

// maxStateAge is how long a remembered upload is kept; servers expire theirs sooner.
const maxStateAge = 30 * 24 * time.Hour

func (s *FileState) read() (*stateFile, error) {
	var st stateFile
	if err := readJSONFile(s.Path, &st); err != nil {
		return nil, err
	}
	if st.Uploads == nil {
		st.Uploads = map[string]stateEntry{}
	}
	return &st, nil
}

// Load implements StateStore.
func (s *FileState) Load(key UploadKey) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.read()
	if err != nil {
		return "", err
	}
	return st.Uploads[key.String()].ID, nil
}

// Save implements StateStore. Entries older than 30 days are dropped on the way.
func (s *FileState) Save(key UploadKey, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.read()
	if err != nil {
		return err
	}
	now := time.Now()
	for k, e := range st.Uploads {
		if now.Sub(e.Saved) > maxStateAge {
			delete(st.Uploads, k)
		}
	}
	st.Uploads[key.String()] = stateEntry{ID: id, Server: key.Server, Path: key.Path, Size: key.Size, ModTime: key.ModTime,
		Options: key.Options, Saved: now}
	return writeJSONFile(s.Path, st)
}

// Forget implements StateStore.
func (s *FileState) Forget(key UploadKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.read()
	if err != nil {
		return err
	}
	if _, ok := st.Uploads[key.String()]; !ok {
		return nil
	}
	delete(st.Uploads, key.String())
	return writeJSONFile(s.Path, st)
}
