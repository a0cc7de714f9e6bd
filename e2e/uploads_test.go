package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/v2m/v2m/internal/testenv"
)

// TestStandaloneUploadsAllOrNothing: against the real standalone binary, tutorial uploads that
// go wrong after their file part leave nothing under data/blobs/videos, and concurrent PUTs
// of one part leave one whole body.
func TestStandaloneUploadsAllOrNothing(t *testing.T) {
	data := t.TempDir()
	srv := startStandalone(t, data)
	u := newUser(t, srv.url(), "ann@example.com")
	u.signup()
	tok := httpLogin(t, srv.url(), u.email, "s3cret-password")
	videos := func() []string {
		ents, err := os.ReadDir(filepath.Join(data, "blobs", "videos"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}

	tutorialFaults(t, srv.addr, tok)
	if v := videos(); len(v) != 0 {
		t.Fatalf("failed tutorial uploads left videos behind: %v", v)
	}
	concurrentPart(t, srv.url(), tok, 8<<20, func(id string) []byte { // the default part size
		b, err := os.ReadFile(filepath.Join(data, "blobs", "videos", id))
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// TestDistributedUploadsAllOrNothing: the same against the gateway, with GridFS on FerretDB.
func TestDistributedUploadsAllOrNothing(t *testing.T) {
	c := startCluster(t, 1)
	u := c.user("ann")
	tok := httpLogin(t, c.gateway.url(), u.email, "s3cret-password")
	db := mongoDB(t, c)
	files := db.Collection("videos.files")
	count := func() int64 {
		n, err := files.CountDocuments(t.Context(), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	tutorialFaults(t, c.gateway.addr, tok)
	if n := count(); n != before {
		t.Fatalf("failed tutorial uploads added %d videos to GridFS", n-before)
	}
	// Nor any chunk: the failed writes removed theirs.
	if n, err := db.Collection("videos.chunks").CountDocuments(t.Context(), bson.D{}); err != nil || n != 0 {
		t.Fatalf("chunks left behind by failed tutorial uploads: %d, %v", n, err)
	}
	concurrentPart(t, c.gateway.url(), tok, 1<<20, func(id string) []byte { return gridFSFile(t, db, id) }) // startCluster's part size
}

// mongoDB connects to the cluster's database.
func mongoDB(t *testing.T, c *cluster) *mongo.Database {
	t.Helper()
	uri := testenv.Get(t, testenv.MongoURI)
	var name string
	for _, e := range c.env {
		if v, ok := strings.CutPrefix(e, "V2MD_MONGO_DB="); ok {
			name = v
		}
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Disconnect(context.Background()) })
	return client.Database(name)
}

// gridFSFile reads a video back from its chunks, in order.
func gridFSFile(t *testing.T, db *mongo.Database, id string) []byte {
	t.Helper()
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Length int64 `bson:"length"`
	}
	if err := db.Collection("videos.files").FindOne(t.Context(), bson.D{{Key: "_id", Value: oid}}).Decode(&f); err != nil {
		t.Fatalf("video %s: %v", id, err)
	}
	cur, err := db.Collection("videos.chunks").Find(t.Context(), bson.D{{Key: "files_id", Value: oid}},
		options.Find().SetSort(bson.D{{Key: "n", Value: 1}}).SetBatchSize(8))
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close(t.Context())
	var out bytes.Buffer
	for i := 0; cur.Next(t.Context()); i++ {
		var ch struct {
			N    int32  `bson:"n"`
			Data []byte `bson:"data"`
		}
		if err := cur.Decode(&ch); err != nil {
			t.Fatal(err)
		}
		if int(ch.N) != i {
			t.Fatalf("video %s: chunk %d where %d belongs", id, ch.N, i)
		}
		out.Write(ch.Data)
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	if int64(out.Len()) != f.Length {
		t.Fatalf("video %s: chunks hold %d bytes, the files document says %d", id, out.Len(), f.Length)
	}
	return out.Bytes()
}

// tutorialFaults sends POST /upload bodies whose file part is whole but whose rest is not:
// a malformed part, a second file, and a half-close before the end. Each must be refused.
func tutorialFaults(t *testing.T, addr, tok string) {
	t.Helper()
	content := make([]byte, 3<<20)
	rand.Read(content)
	for name, tail := range map[string]string{
		"malformed part": "\r\n--B\r\nno header here\r\n\r\nx\r\n--B--\r\n",
		"second file":    "\r\n--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"b.mp4\"\r\n\r\nx\r\n--B--\r\n",
	} {
		body := formWithFile(content, tail)
		code, text := rawPost(t, addr, tok, body, len(body))
		if code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", name, code, text)
		}
	}
	// The file part ends, the next part begins, and the client half-closes.
	body := formWithFile(content, "\r\n--B\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi")
	if code, text := rawPost(t, addr, tok, body, len(body)+100); code < 400 {
		t.Errorf("half-close: %d %s, want an error", code, text)
	}
}

// formWithFile is a multipart body with boundary "B": one whole file part, then tail.
func formWithFile(content []byte, tail string) []byte {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.SetBoundary("B")
	fw, _ := mw.CreateFormFile("file", "v.mp4")
	fw.Write(content)
	return append(buf.Bytes(), tail...)
}

// rawPost sends POST /upload over a plain connection announcing length bytes, sends body,
// half-closes, and returns the answer.
func rawPost(t *testing.T, addr, tok string, body []byte, length int) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: multipart/form-data; boundary=B\r\nContent-Length: %d\r\n\r\n", addr, tok, length)
	if _, err := conn.Write(body); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// trickle sends its bytes a few KiB per Read, so that concurrent requests interleave.
type trickle struct{ b []byte }

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 16<<10)], r.b)
	r.b = r.b[n:]
	return n, nil
}

// concurrentPart sends part 1 of a three-part upload (parts of ps bytes) six times at once with
// two different bodies, completes the upload without a sha256 and reads the video back (with
// read): part 1 must be one of the two bodies, byte for byte. Several rounds.
func concurrentPart(t *testing.T, base, tok string, ps int64, read func(id string) []byte) {
	t.Helper()
	do := func(method, path string, body io.Reader, size int64, out any) int {
		req, _ := http.NewRequest(method, base+path, body)
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != nil {
			req.ContentLength = size
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		defer resp.Body.Close()
		if out != nil {
			json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	for round := range 3 {
		var up struct {
			ID       string `json:"id"`
			PartSize int64  `json:"part_size"`
		}
		meta, _ := json.Marshal(map[string]any{"filename": "race.mp4", "size": 3 * ps})
		if code := do("POST", "/v1/uploads", bytes.NewReader(meta), int64(len(meta)), &up); code != 201 || up.PartSize != ps {
			t.Fatalf("create upload: %d, part size %d, want %d", code, up.PartSize, ps)
		}
		data := make([]byte, 3*ps)
		rand.Read(data)
		bodies := [2][]byte{make([]byte, ps), make([]byte, ps)}
		rand.Read(bodies[0])
		rand.Read(bodies[1])
		for _, n := range []int{0, 2} {
			if code := do("PUT", fmt.Sprintf("/v1/uploads/%s/parts/%d", up.ID, n), bytes.NewReader(data[int64(n)*ps:int64(n+1)*ps]), ps, nil); code != 204 {
				t.Fatalf("round %d: part %d: %d", round, n, code)
			}
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		codes := make([]int, 6)
		for i := range codes {
			wg.Go(func() {
				<-start
				codes[i] = do("PUT", "/v1/uploads/"+up.ID+"/parts/1", &trickle{b: bodies[i%2]}, ps, nil)
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, code := range codes {
			if code == 204 {
				ok++
			} else if code != 409 {
				t.Fatalf("round %d: concurrent PUTs answered %v", round, codes)
			}
		}
		if ok == 0 {
			t.Fatalf("round %d: no PUT succeeded: %v", round, codes)
		}
		var job struct{ ID string }
		if code := do("POST", "/v1/uploads/"+up.ID+"/complete", nil, 0, &job); code != 201 {
			t.Fatalf("round %d: complete: %d", round, code)
		}
		got := read(job.ID)
		if int64(len(got)) != 3*ps || !bytes.Equal(got[:ps], data[:ps]) || !bytes.Equal(got[2*ps:], data[2*ps:]) {
			t.Fatalf("round %d: the video's size or its parts 0 and 2 are wrong", round)
		}
		if mid := got[ps : 2*ps]; !bytes.Equal(mid, bodies[0]) && !bytes.Equal(mid, bodies[1]) {
			t.Fatalf("round %d: part 1 is a mix of the two bodies", round)
		}
	}
}
