package testserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testserver"
	"github.com/v2m/v2m/pkg/wire"
)

// api is a bare HTTP client of the test server, so that these tests pin the server's
// behaviour without the SDK's retries in the way.
type api struct {
	t   *testing.T
	s   *testserver.Server
	tok string
}

func newAPI(t *testing.T, opts testserver.Options) *api {
	s := testserver.New(t, opts)
	return &api{t: t, s: s, tok: s.Signup(t, "ann@example.com", "password1")}
}

// do sends a request on a connection of its own and returns the status and body, or the
// transport's error.
func (a *api) do(method, path string, body []byte, hdr ...string) (int, []byte, error) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.s.URL+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	req.Header.Set("Authorization", "Bearer "+a.tok)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (a *api) must(want int, method, path string, body []byte, out any, hdr ...string) {
	a.t.Helper()
	code, b, err := a.do(method, path, body, hdr...)
	if err != nil || code != want {
		a.t.Fatalf("%s %s: %d %s %v, want %d", method, path, code, b, err, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

func (a *api) createUpload(size int) wire.Upload {
	a.t.Helper()
	in, _ := json.Marshal(wire.NewUpload{Filename: "talk.mp4", Size: int64(size)})
	var up wire.Upload
	a.must(201, "POST", "/v1/uploads", in, &up)
	return up
}

func (a *api) putPart(id string, n int, data []byte) (int, error) {
	a.t.Helper()
	sum := fmt.Sprintf("%08x", crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	code, _, err := a.do("PUT", fmt.Sprintf("/v1/uploads/%s/parts/%d", id, n), data, "X-Part-CRC32C", sum)
	return code, err
}

func (a *api) waitJob(id string) wire.Job {
	a.t.Helper()
	for {
		var j wire.Job
		a.must(200, "GET", "/v1/jobs/"+id+"?wait=60s", nil, &j)
		if j.Final() {
			return j
		}
	}
}

// TestCompleteIsIdempotent pins what clients rely on to recover a lost answer: the job has
// the upload's id, and completing a completed upload again answers 201 with the same job.
func TestCompleteIsIdempotent(t *testing.T) {
	a := newAPI(t, testserver.Options{PartSize: 4})
	video := []byte("0123456789")
	up := a.createUpload(len(video))
	for n := range up.Parts {
		if code, err := a.putPart(up.ID, n, video[n*4:min(n*4+4, len(video))]); err != nil || code != 204 {
			t.Fatalf("part %d: %d %v", n, code, err)
		}
	}
	var first, second wire.Job
	a.must(201, "POST", "/v1/uploads/"+up.ID+"/complete", nil, &first)
	a.must(201, "POST", "/v1/uploads/"+up.ID+"/complete", nil, &second)
	if first.ID != up.ID || second.ID != up.ID {
		t.Fatalf("job ids %s and %s, want the upload's %s", first.ID, second.ID, up.ID)
	}
	a.must(404, "GET", "/v1/uploads/"+up.ID, nil, nil)
	if got := a.s.Video(t, up.ID); !bytes.Equal(got, video) {
		t.Fatalf("video %q", got)
	}
	j := a.waitJob(up.ID)
	if j.State != wire.JobDone || j.Progress != 100 || j.MP3FID == "" {
		t.Fatalf("job %+v", j)
	}
	_, mp3, err := a.do("GET", "/v1/files/"+j.MP3FID, nil)
	if err != nil || !bytes.Equal(mp3, testserver.FakeMP3(video)) {
		t.Fatalf("mp3: %v", err)
	}
}

func TestLoseAnswer(t *testing.T) {
	a := newAPI(t, testserver.Options{})
	up := a.createUpload(3)
	if code, err := a.putPart(up.ID, 0, []byte("abc")); err != nil || code != 204 {
		t.Fatalf("part: %d %v", code, err)
	}
	a.s.Faults.LoseAnswer("POST /v1/uploads/{id}/complete", 1)
	if code, b, err := a.do("POST", "/v1/uploads/"+up.ID+"/complete", nil); err == nil {
		t.Fatalf("a lost answer arrived: %d %s", code, b)
	}
	var j wire.Job
	a.must(200, "GET", "/v1/jobs/"+up.ID, nil, &j) // the work was done all the same
	reqs := a.s.Requests("POST /v1/uploads/{id}/complete")
	if len(reqs) != 1 || reqs[0].Fault != "LoseAnswer" {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestCutRequestBody(t *testing.T) {
	a := newAPI(t, testserver.Options{PartSize: 100})
	up := a.createUpload(150)
	a.s.Faults.CutRequestBody("PUT /v1/uploads/{id}/parts/0", 40, 1)
	part := bytes.Repeat([]byte("x"), 100)
	if code, err := a.putPart(up.ID, 0, part); err == nil {
		t.Fatalf("a cut PUT was answered %d", code)
	}
	var got wire.Upload
	a.must(200, "GET", "/v1/uploads/"+up.ID, nil, &got)
	if len(got.Received) != 0 {
		t.Fatalf("a cut part was stored: %v", got.Received)
	}
	if code, err := a.putPart(up.ID, 0, part); err != nil || code != 204 {
		t.Fatalf("part after the fault: %d %v", code, err)
	}
	if n := len(a.s.Requests("PUT /v1/uploads/{id}/parts/{n}")); n != 2 {
		t.Fatalf("%d PUTs recorded", n)
	}
}

func TestCutResponse(t *testing.T) {
	mp3 := bytes.Repeat([]byte("0123456789"), 10_000)
	a := newAPI(t, testserver.Options{Convert: func(_ context.Context, _, dst string, _ func(int)) error {
		return os.WriteFile(dst, mp3, 0o600)
	}})
	up := a.createUpload(1)
	a.putPart(up.ID, 0, []byte("v"))
	a.must(201, "POST", "/v1/uploads/"+up.ID+"/complete", nil, nil)
	j := a.waitJob(up.ID)
	a.s.Faults.CutResponse("GET /v1/files/{fid}", 12_345, 1)
	code, got, err := a.do("GET", "/v1/files/"+j.MP3FID, nil)
	if code != 200 || !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != 12_345 || !bytes.Equal(got, mp3[:12_345]) {
		t.Fatalf("cut download: %d, %d bytes, %v", code, len(got), err)
	}
	if _, got, err = a.do("GET", "/v1/files/"+j.MP3FID, nil); err != nil || !bytes.Equal(got, mp3) {
		t.Fatalf("download after the fault: %d bytes, %v", len(got), err)
	}
}

func TestFailAndNext(t *testing.T) {
	a := newAPI(t, testserver.Options{Convert: testserver.Fail("no audio stream")})
	up := a.createUpload(1)
	a.putPart(up.ID, 0, []byte("v"))
	next := a.s.Next("POST /v1/uploads/{id}/complete")
	a.must(201, "POST", "/v1/uploads/"+up.ID+"/complete", nil, nil)
	if r := <-next; r.Path != "/v1/uploads/"+up.ID+"/complete" || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		t.Fatalf("next request %+v", r)
	}
	if j := a.waitJob(up.ID); j.State != wire.JobFailed || j.Error != "no audio stream" || j.FinishedAt == nil {
		t.Fatalf("job %+v", j)
	}
}

// TestTransientConvertErrors: a conversion that fails with an ordinary error is tried
// MaxAttempts times, then its job fails; one that recovers in time is done.
func TestTransientConvertErrors(t *testing.T) {
	var mu sync.Mutex
	tries := map[string]int{}
	a := newAPI(t, testserver.Options{Convert: func(ctx context.Context, src, dst string, p func(int)) error {
		video, _ := os.ReadFile(src)
		mu.Lock()
		tries[string(video)]++
		n := tries[string(video)]
		mu.Unlock()
		if string(video) == "never" || n < testserver.MaxAttempts {
			return errors.New("the disk is full")
		}
		return testserver.FakeConvert(ctx, src, dst, p)
	}})
	for video, want := range map[string]string{"never": wire.JobFailed, "late": wire.JobDone} {
		up := a.createUpload(len(video))
		a.putPart(up.ID, 0, []byte(video))
		a.must(201, "POST", "/v1/uploads/"+up.ID+"/complete", nil, nil)
		if j := a.waitJob(up.ID); j.State != want {
			t.Errorf("%s: job %+v, want %s", video, j, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if tries["never"] != testserver.MaxAttempts || tries["late"] != testserver.MaxAttempts {
		t.Errorf("tries %v, want %d each", tries, testserver.MaxAttempts)
	}
}

// TestNowExpiresTokens: a token is refused as expired once the server's clock has passed
// its 24 hours.
func TestNowExpiresTokens(t *testing.T) {
	var skew atomic.Int64
	a := newAPI(t, testserver.Options{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	a.must(200, "GET", "/v1/me", nil, nil)
	skew.Store(int64(24*time.Hour + time.Minute))
	code, b, err := a.do("GET", "/v1/me", nil)
	if err != nil || code != 401 || !strings.Contains(string(b), "token expired") {
		t.Fatalf("an expired token: %d %s %v", code, b, err)
	}
}
