package api

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// videoFiles lists every file under the store's videos directory, temporary ones included.
func (e *env) videoFiles() []string {
	e.t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.dir, "videos"))
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, d := range ents {
		names = append(names, d.Name())
	}
	return names
}

func (e *env) jobCount(tok string) int {
	e.t.Helper()
	var list struct{ Jobs []jobResp }
	if r := e.do("GET", "/v1/jobs", tok, nil); r.code != 200 || r.json(&list) != nil {
		e.t.Fatalf("jobs: %d %s", r.code, r.body)
	}
	return len(list.Jobs)
}

// multipartBody is a form with a whole file part followed by tail, which the test shapes.
func multipartBody(content []byte, tail string) (body []byte, contentType string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "v.mp4")
	fw.Write(content)
	// The file part ends at the next boundary line, which tail supplies.
	return append(buf.Bytes(), strings.ReplaceAll(tail, "BOUNDARY", mw.Boundary())...), mw.FormDataContentType()
}

// TestTutorialUploadFaultsLeaveNothing: whatever goes wrong after the file part, the upload
// leaves no video (not even a temporary file) and no job.
func TestTutorialUploadFaultsLeaveNothing(t *testing.T) {
	e := newEnv(t)
	tok := e.user("ann@example.com")
	content := bytes.Repeat([]byte("video bytes "), 500)
	cases := []struct {
		name, tail string
		code       int
	}{
		{"malformed part after the file", "\r\n--BOUNDARY\r\nthis is no header line\r\n\r\nx\r\n--BOUNDARY--\r\n", 400},
		{"second file", "\r\n--BOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.mp4\"\r\n\r\nmore\r\n--BOUNDARY--\r\n", 400},
		{"no closing boundary", "", 400},
		{"body ends inside a field", "\r\n--BOUNDARY\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nunfinished", 400},
		{"file over the limit", "\r\n--BOUNDARY--\r\n", 413},
	}
	for _, c := range cases {
		body, ct := multipartBody(content, c.tail)
		if c.code == 413 {
			body, ct = multipartBody(make([]byte, 1<<20+1), c.tail)
		}
		if r := e.do("POST", "/upload", tok, bytes.NewReader(body), "Content-Type", ct); r.code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, r.code, r.body, c.code)
		}
		if files := e.videoFiles(); len(files) != 0 {
			t.Fatalf("%s: videos left behind: %v", c.name, files)
		}
	}
	if n := e.jobCount(tok); n != 0 {
		t.Fatalf("%d jobs created by failed uploads", n)
	}
	// A form field after the file is fine, and the video then exists whole.
	body, ct := multipartBody(content, "\r\n--BOUNDARY\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--BOUNDARY--\r\n")
	var j jobResp
	if r := e.do("POST", "/upload", tok, bytes.NewReader(body), "Content-Type", ct); r.code != 200 || r.json(&j) != nil {
		t.Fatalf("upload with a trailing field: %d %s", r.code, r.body)
	}
	if files := e.videoFiles(); !slices.Equal(files, []string{j.ID}) {
		t.Fatalf("videos = %v, want [%s]", files, j.ID)
	}
	b, err := e.blobs.Open(t.Context(), "videos", j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got, _ := io.ReadAll(b); !bytes.Equal(got, content) {
		t.Fatal("stored video differs from the file part")
	}
}

// TestTutorialUploadHalfCloseLeavesNothing: a client that sends the whole file part and then
// half-closes its connection, before the body is complete, gets an error and leaves nothing.
func TestTutorialUploadHalfCloseLeavesNothing(t *testing.T) {
	e := newEnv(t)
	tok := e.user("ann@example.com")
	content := bytes.Repeat([]byte("v"), 5000)
	// The file part ends, the next part starts, and the client stops sending.
	sent, ct := multipartBody(content, "\r\n--BOUNDARY\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi")
	body := make([]byte, len(sent)+100) // what the request announces
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
		tok, ct, len(body))
	conn.Write(sent)
	conn.(*net.TCPConn).CloseWrite()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer after the half-close: %v", err)
	}
	res.Body.Close()
	if res.StatusCode < 400 {
		t.Fatalf("a cut-short upload answered %d", res.StatusCode)
	}
	if files := e.videoFiles(); len(files) != 0 {
		t.Fatalf("videos left behind: %v", files)
	}
	if n := e.jobCount(tok); n != 0 {
		t.Fatalf("%d jobs created", n)
	}
}

// TestBadChecksumKeepsReceivedPart: a rewrite of a received part whose X-Part-CRC32C does not
// match is refused, and the part stays received with its earlier bytes.
func TestBadChecksumKeepsReceivedPart(t *testing.T) {
	e := newEnv(t)
	tok := e.user("ann@example.com")
	data := bytes.Repeat([]byte("0123456789abcdef"), 128) // 2 parts of 1024
	var up struct{ ID string }
	if r := e.do("POST", "/v1/uploads", tok, jsonBody(map[string]any{"filename": "a.mp4", "size": len(data)})); r.code != 201 || r.json(&up) != nil {
		t.Fatalf("create: %d %s", r.code, r.body)
	}
	put := func(n int, b []byte, sum uint32) resp {
		return e.do("PUT", fmt.Sprintf("/v1/uploads/%s/parts/%d", up.ID, n), tok, bytes.NewReader(b),
			"X-Part-CRC32C", fmt.Sprintf("%08x", sum))
	}
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	for n := range 2 {
		if r := put(n, data[n*1024:(n+1)*1024], crc32.Checksum(data[n*1024:(n+1)*1024], castagnoli)); r.code != 204 {
			t.Fatalf("part %d: %d %s", n, r.code, r.body)
		}
	}
	other := bytes.Repeat([]byte("x"), 1024)
	if r := put(0, other, crc32.Checksum(other, castagnoli)^1); r.code != 400 {
		t.Fatalf("bad checksum: %d %s", r.code, r.body)
	}
	var got struct{ Received []int }
	if r := e.do("GET", "/v1/uploads/"+up.ID, tok, nil); r.json(&got) != nil || !slices.Equal(got.Received, []int{0, 1}) {
		t.Fatalf("received after a bad rewrite: %s", r.body)
	}
	var j jobResp
	if r := e.do("POST", "/v1/uploads/"+up.ID+"/complete", tok, nil); r.code != 201 || r.json(&j) != nil {
		t.Fatalf("complete: %d %s", r.code, r.body)
	}
	b, err := e.blobs.Open(t.Context(), "videos", j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if back, _ := io.ReadAll(b); !bytes.Equal(back, data) {
		t.Fatal("a refused rewrite changed the video")
	}
}
