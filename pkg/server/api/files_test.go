package api

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

// downloadable makes a done job with an MP3 of n bytes and returns the MP3's fid and content.
func (e *env) downloadable(tok string, n int) (string, []byte) {
	e.t.Helper()
	var j jobResp
	if r := e.tutorialUpload(tok, "talk.mp4", []byte("video")); r.code != 200 || r.json(&j) != nil {
		e.t.Fatalf("upload: %d %s", r.code, r.body)
	}
	mp3 := make([]byte, n)
	for i := range mp3 {
		mp3[i] = byte('a' + i%26)
	}
	return e.finish(j.ID, mp3).MP3FID, mp3
}

// TestHeadDownload: HEAD on both download routes answers like GET, headers and all, without
// a body; and stays 404 for someone else.
func TestHeadDownload(t *testing.T) {
	e := newEnv(t)
	tok := e.user("ann@example.com")
	fid, mp3 := e.downloadable(tok, 1000)
	for _, p := range []string{"/v1/files/" + fid, "/download?fid=" + fid} {
		get := e.do("GET", p, tok, nil)
		head := e.do("HEAD", p, tok, nil)
		if head.code != 200 || len(head.body) != 0 {
			t.Fatalf("HEAD %s: %d, %d bytes of body", p, head.code, len(head.body))
		}
		for _, k := range []string{"Content-Type", "Content-Length", "ETag", "Accept-Ranges", "Content-Disposition", "Cache-Control", "Last-Modified"} {
			if head.hdr.Get(k) == "" || head.hdr.Get(k) != get.hdr.Get(k) {
				t.Errorf("HEAD %s: %s = %q, GET has %q", p, k, head.hdr.Get(k), get.hdr.Get(k))
			}
		}
		if head.hdr.Get("Content-Length") != fmt.Sprint(len(mp3)) {
			t.Errorf("HEAD %s: Content-Length %s", p, head.hdr.Get("Content-Length"))
		}
		if r := e.do("HEAD", p, tok, nil, "Range", "bytes=10-19"); r.code != 206 || r.hdr.Get("Content-Range") != "bytes 10-19/1000" {
			t.Errorf("HEAD %s with Range: %d %q", p, r.code, r.hdr.Get("Content-Range"))
		}
	}
	other := e.user("bob@example.com")
	if r := e.do("HEAD", "/v1/files/"+fid, other, nil); r.code != 404 {
		t.Errorf("HEAD of someone else's file: %d", r.code)
	}
	if r := e.do("HEAD", "/v1/files/"+fid, "", nil); r.code != 401 {
		t.Errorf("HEAD without a token: %d", r.code)
	}
}

// TestDegenerateRanges: ranges per RFC 9110 section 14.
func TestDegenerateRanges(t *testing.T) {
	e := newEnv(t)
	tok := e.user("ann@example.com")
	fid, mp3 := e.downloadable(tok, 1000)
	path := "/v1/files/" + fid
	for _, tc := range []struct {
		rng          string
		code         int
		contentRange string
		body         []byte // nil: not checked
	}{
		{"bytes=-0", 416, "bytes */1000", nil},                   // a suffix of zero bytes selects nothing
		{"bytes=-0,-0", 416, "bytes */1000", nil},                // nor do two
		{"bytes=1000-", 416, "bytes */1000", nil},                // starts at the end
		{"bytes=5000-6000", 416, "bytes */1000", nil},            // past the end
		{"bytes=5-2", 416, "bytes */1000", nil},                  // last < first: invalid, refused
		{"bytes=abc", 416, "bytes */1000", nil},                  // not a range
		{"bytes=-0,990-", 206, "bytes 990-999/1000", mp3[990:]},  // the satisfiable one is served
		{"bytes=990-5000", 206, "bytes 990-999/1000", mp3[990:]}, // last past the end is cut to the end
		{"bytes=-10", 206, "bytes 990-999/1000", mp3[990:]},
		{"bytes=-5000", 206, "bytes 0-999/1000", mp3},
		{"bytes=0-0", 206, "bytes 0-0/1000", mp3[:1]},
		{"items=0-5", 200, "", mp3}, // a unit we do not know is ignored
		{"BYTES=0-4", 206, "bytes 0-4/1000", mp3[:5]},
	} {
		r := e.do("GET", path, tok, nil, "Range", tc.rng)
		if r.code != tc.code || r.hdr.Get("Content-Range") != tc.contentRange {
			t.Errorf("Range %s: %d %q, want %d %q", tc.rng, r.code, r.hdr.Get("Content-Range"), tc.code, tc.contentRange)
			continue
		}
		if tc.body != nil && !bytes.Equal(r.body, tc.body) {
			t.Errorf("Range %s: body %q", tc.rng, r.body)
		}
	}
	// Several ranges: one multipart/byteranges answer with each part and its Content-Range.
	r := e.do("GET", path, tok, nil, "Range", "bytes=0-1,10-12")
	mt, params, err := mime.ParseMediaType(r.hdr.Get("Content-Type"))
	if r.code != 206 || err != nil || mt != "multipart/byteranges" {
		t.Fatalf("two ranges: %d %q", r.code, r.hdr.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(r.body), params["boundary"])
	var got []string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(p)
		got = append(got, p.Header.Get("Content-Range")+"="+string(b))
	}
	if strings.Join(got, " ") != "bytes 0-1/1000=ab bytes 10-12/1000=klm" {
		t.Fatalf("two ranges: %v", got)
	}
	// A precondition still comes first.
	if r := e.do("GET", path, tok, nil, "Range", "bytes=-0", "If-None-Match", `"`+fid+`"`); r.code != 304 {
		t.Fatalf("If-None-Match with an unsatisfiable range: %d", r.code)
	}
}

// TestSplitJobFiles: a done split job lists its files; each downloads by its fid with
// ranges, the job's mp3_fid is the zip of them all, and so is its archive.
func TestSplitJobFiles(t *testing.T) {
	e := newEnv(t)
	tok := e.user("ann@example.com")
	var j jobResp
	if r := e.tutorialUpload(tok, "Live at the Hall.mkv", []byte("video")); r.code != 200 || r.json(&j) != nil {
		t.Fatalf("upload: %d %s", r.code, r.body)
	}
	if r := e.do("GET", "/v1/jobs/"+j.ID+"/archive", tok, nil); r.code != 409 {
		t.Errorf("archive of a queued job: %d %s, want 409", r.code, r.body)
	}
	parts := []string{"first part of the show", "second"}
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for i, p := range parts {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: wire.TrackName(i, "t"), Method: zip.Store})
		io.WriteString(w, p)
	}
	zw.Close()
	done := e.finishFiles(j.ID, zbuf.Bytes(), []server.JobFile{
		{Title: "Opening", End: 90 * time.Second, Size: int64(len(parts[0]))},
		{Title: "Encore", Start: 90 * time.Second, End: 200500 * time.Millisecond, Size: int64(len(parts[1]))},
	})
	var got wire.Job
	if r := e.do("GET", "/v1/jobs/"+j.ID, tok, nil); r.code != 200 || r.json(&got) != nil {
		t.Fatalf("job: %d %s", r.code, r.body)
	}
	want := []wire.File{
		{FID: done.MP3FID + "-01", Title: "Opening", Start: 0, End: 90, Size: int64(len(parts[0]))},
		{FID: done.MP3FID + "-02", Title: "Encore", Start: 90, End: 200.5, Size: int64(len(parts[1]))},
	}
	if !slices.Equal(got.Files, want) {
		t.Fatalf("files = %+v\nwant %+v", got.Files, want)
	}
	for i, f := range got.Files {
		r := e.do("GET", "/v1/files/"+f.FID, tok, nil)
		_, params, _ := mime.ParseMediaType(r.hdr.Get("Content-Disposition"))
		if r.code != 200 || string(r.body) != parts[i] || r.hdr.Get("Content-Type") != "audio/mpeg" ||
			params["filename"] != []string{"01 - Opening.mp3", "02 - Encore.mp3"}[i] {
			t.Errorf("file %d: %d %q %v", i, r.code, r.body, r.hdr)
		}
		if r := e.do("GET", "/v1/files/"+f.FID, tok, nil, "Range", "bytes=2-4"); r.code != 206 || string(r.body) != parts[i][2:5] {
			t.Errorf("file %d, bytes 2-4: %d %q", i, r.code, r.body)
		}
	}
	for _, p := range []string{"/v1/files/" + done.MP3FID + "-03", "/v1/files/" + done.MP3FID + "-1", "/v1/files/" + done.MP3FID + "-01x"} {
		if r := e.do("GET", p, tok, nil); r.code != 404 {
			t.Errorf("GET %s: %d, want 404", p, r.code)
		}
	}
	other := e.user("bob@example.com")
	if r := e.do("GET", "/v1/files/"+want[0].FID, other, nil); r.code != 404 {
		t.Errorf("bob gets ann's file: %d", r.code)
	}
	if r := e.do("GET", "/v1/jobs/"+j.ID+"/archive", other, nil); r.code != 404 {
		t.Errorf("bob gets ann's archive: %d", r.code)
	}
	for _, p := range []string{"/v1/files/" + done.MP3FID, "/v1/jobs/" + j.ID + "/archive"} {
		r := e.do("GET", p, tok, nil)
		_, params, _ := mime.ParseMediaType(r.hdr.Get("Content-Disposition"))
		if r.code != 200 || r.hdr.Get("Content-Type") != "application/zip" || !bytes.Equal(r.body, zbuf.Bytes()) ||
			params["filename"] != "Live at the Hall.zip" {
			t.Errorf("GET %s: %d %v (%d bytes)", p, r.code, r.hdr, len(r.body))
		}
	}
}

// TestArchiveOfOneMP3: the archive of a job of one MP3 is a zip holding it.
func TestArchiveOfOneMP3(t *testing.T) {
	e := newEnv(t)
	tok := e.user("ann@example.com")
	fid, mp3 := e.downloadable(tok, 3000)
	var list wire.JobList
	e.do("GET", "/v1/jobs", tok, nil).json(&list)
	if len(list.Jobs) != 1 || list.Jobs[0].MP3FID != fid || list.Jobs[0].Files != nil {
		t.Fatalf("jobs: %+v", list.Jobs)
	}
	r := e.do("GET", "/v1/jobs/"+list.Jobs[0].ID+"/archive", tok, nil)
	if r.code != 200 {
		t.Fatalf("archive: %d %s", r.code, r.body)
	}
	zr, err := zip.NewReader(bytes.NewReader(r.body), int64(len(r.body)))
	if err != nil || len(zr.File) != 1 || zr.File[0].Name != "talk.mp3" {
		t.Fatalf("archive: %v %v", err, zr)
	}
	f, _ := zr.File[0].Open()
	got, _ := io.ReadAll(f)
	if !bytes.Equal(got, mp3) {
		t.Errorf("the archive's MP3 differs")
	}
}
