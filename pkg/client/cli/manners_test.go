package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testserver"
	"github.com/v2m/v2m/pkg/client"
)

// TestServerWithoutScheme: a server given as host:port is reached over http, and its token is
// the one kept for http://host:port; what is not a URL is a usage error in plain words.
func TestServerWithoutScheme(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	e.login("a@example.com")
	e.vars["V2M_SERVER"] = strings.TrimPrefix(s.URL, "http://")
	r := e.run("", "whoami")
	e.want(r, 0)
	if r.stdout != "a@example.com\n" {
		t.Fatalf("whoami printed %q", r.stdout)
	}
	for _, bad := range []string{"127.0.0.1:port", "http://", "http:///path", " "} {
		r := e.run("", "whoami", "--server", bad)
		e.want(r, 2)
		if strings.Contains(r.stderr, "parse ") || strings.Contains(r.stderr, "first path segment") {
			t.Errorf("--server %q: stderr %q shows Go's URL parser", bad, r.stderr)
		}
	}
}

// TestMessagesWithoutInternals: an unknown job is "job X not found" (exit 4), in text and in
// JSON; a server that is gone is named, with the reason in words (exit 7).
func TestMessagesWithoutInternals(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	e.login("a@example.com")
	r := e.run("", "status", "nope")
	e.want(r, 4)
	if r.stderr != "v2m: job nope not found\n" {
		t.Fatalf("stderr %q", r.stderr)
	}
	r = e.run("", "wait", "nope", "--json")
	e.want(r, 4)
	var doc struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.Error.Message != "job nope not found" || doc.Error.Code != "not_found" {
		t.Fatalf("--json: %v %s", err, r.stdout)
	}

	url := deadURL()
	e.vars["V2M_SERVER"] = url
	e.vars["V2M_TOKEN"] = "a-token"
	for _, args := range [][]string{{"jobs"}, {"status", "x"}, {"register", "--email", "b@example.com", "--password-stdin"}} {
		r := e.run("password1\n", args...)
		e.want(r, 7)
		if want := "v2m: cannot reach the server at " + url + ": connection refused — is v2md running?\n"; r.stderr != want {
			t.Errorf("%v: stderr %q, want %q", args, r.stderr, want)
		}
	}
}

// TestLogoutWhenNotLoggedIn: logout without a token says so and exits 0, calling nothing.
func TestLogoutWhenNotLoggedIn(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	r := e.run("", "logout")
	e.want(r, 0)
	if r.stdout != "not logged in to "+s.URL+"\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
	r = e.run("", "logout", "--json")
	e.want(r, 0)
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc["not_logged_in"] != true || doc["revoked"] != false {
		t.Fatalf("--json: %v %s", err, r.stdout)
	}
	if reqs := s.Requests(anyRoute); len(reqs) != 0 {
		t.Fatalf("logout without a token called the server: %+v", reqs)
	}
	e.login("a@example.com")
	r = e.run("", "logout")
	e.want(r, 0)
	if !strings.HasPrefix(r.stdout, "logged out of ") {
		t.Fatalf("logout with a token printed %q", r.stdout)
	}
}

// TestJobsForScriptsAndPeople: off a terminal jobs prints tab-separated lines without a header
// or padding; on one, the padded table with its header.
func TestJobsForScriptsAndPeople(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	e.login("a@example.com")
	c := sdk(t, s, storedToken(t, s.URL))
	a := addJob(t, c, "a talk.mp4", []byte("a video"), true)
	b := addJob(t, c, "b.mp4", []byte("another video"), true)

	r := e.run("", "jobs")
	e.want(r, 0)
	want := ""
	for _, j := range []*client.Job{b, a} {
		want += strings.Join([]string{j.ID, "done", "100", j.Filename, j.CreatedAt.UTC().Format(time.RFC3339)}, "\t") + "\n"
	}
	if r.stdout != want {
		t.Fatalf("jobs into a pipe:\n%q\nwant\n%q", r.stdout, want)
	}

	e.ttyOut = true
	r = e.run("", "jobs")
	e.want(r, 0)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID  ") || strings.Contains(r.stdout, "\t") ||
		!strings.HasPrefix(lines[1], b.ID+"  done   100%") {
		t.Fatalf("jobs on a terminal:\n%s", r.stdout)
	}
}

// TestCompletion: the commands that take a JOB complete the user's job ids (download also the
// MP3s' fids), never file names; without a login they offer nothing and say nothing.
func TestCompletion(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	e := newEnv(t, s)
	complete := func(args ...string) (ids []string, directive string, stderr string) {
		t.Helper()
		r := e.run("", append([]string{"__complete"}, args...)...)
		e.want(r, 0)
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		for _, l := range lines[:len(lines)-1] {
			ids = append(ids, strings.SplitN(l, "\t", 2)[0])
		}
		return ids, lines[len(lines)-1], r.stderr
	}
	ids, directive, stderr := complete("status", "")
	if len(ids) != 0 || directive != ":4" || strings.Contains(stderr, "v2m:") || strings.Contains(stderr, "login") {
		t.Fatalf("not logged in: %v %q, stderr %q", ids, directive, stderr)
	}

	e.login("a@example.com")
	c := sdk(t, s, storedToken(t, s.URL))
	done := addJob(t, c, "talk.mp4", []byte("a video"), true)
	other := addJob(t, c, "song.mp4", []byte("another video"), true)
	for _, cmd := range []string{"status", "wait"} {
		ids, directive, _ := complete(cmd, "")
		if len(ids) != 2 || !slices.Contains(ids, other.ID) || !slices.Contains(ids, done.ID) || directive != ":4" {
			t.Errorf("%s: %v %q, want the two job ids and no file names (:4)", cmd, ids, directive)
		}
	}
	ids, _, _ = complete("download", "")
	if !slices.Contains(ids, done.ID) || !slices.Contains(ids, done.MP3FID) || !slices.Contains(ids, other.MP3FID) || len(ids) != 4 {
		t.Errorf("download: %v, want the job ids and their fids", ids)
	}
	ids, _, _ = complete("status", done.ID[:20])
	if !slices.Contains(ids, done.ID) {
		t.Errorf("status with a prefix: %v", ids)
	}
	ids, directive, _ = complete("status", done.ID, "")
	if len(ids) != 0 || directive != ":4" {
		t.Errorf("a second argument: %v %q", ids, directive)
	}
}

// TestDownloadOutputs: -o names a file that is not replaced without --clobber, a directory to
// save into, or stdout; nothing is left beside the target, and a failure leaves nothing.
func TestDownloadOutputs(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	e.login("a@example.com")
	video := []byte("a video")
	j := addJob(t, sdk(t, s, storedToken(t, s.URL)), "talk.mp4", video, true)
	mp3 := testserver.FakeMP3(video)
	dir := t.TempDir()
	t.Chdir(dir)

	existing := filepath.Join(dir, "existing.mp3")
	if err := os.WriteFile(existing, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := len(s.Requests(fileRoute))
	r := e.run("", "download", j.ID, "-o", existing)
	e.want(r, 2)
	if !strings.Contains(r.stderr, existing+" exists") || !strings.Contains(r.stderr, "--clobber") {
		t.Fatalf("stderr %q, want the file and --clobber named", r.stderr)
	}
	assertFile(t, existing, []byte("keep me"))
	if n := len(s.Requests(fileRoute)) - before; n != 0 {
		t.Fatalf("%d downloads before refusing", n)
	}
	e.want(e.run("", "download", j.ID, "-o", existing, "--clobber"), 0)
	assertFile(t, existing, mp3)

	r = e.run("", "download", j.ID, "-o", "-")
	e.want(r, 0)
	if !bytes.Equal([]byte(r.stdout), mp3) {
		t.Fatalf("-o - wrote %d bytes on stdout, want the MP3's %d", len(r.stdout), len(mp3))
	}
	r = e.run("", "download", j.MP3FID, "-o", "-")
	e.want(r, 0)
	if !bytes.Equal([]byte(r.stdout), mp3) {
		t.Fatal("-o - by fid did not write the MP3 on stdout")
	}

	into := filepath.Join(dir, "into")
	if err := os.Mkdir(into, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{into, "into/"} {
		r = e.run("", "download", j.ID, "-o", out, "--clobber")
		e.want(r, 0)
		if r.stdout != filepath.Join(out, "talk.mp3")+"\n" {
			t.Errorf("-o %s printed %q", out, r.stdout)
		}
	}
	assertFile(t, filepath.Join(into, "talk.mp3"), mp3)
	e.want(e.run("", "download", j.ID, "-o", "new/"), 0)
	assertFile(t, filepath.Join(dir, "new", "talk.mp3"), mp3)

	e.want(e.run("", "download", "nosuchfile", "-o", "gone/"), 4)
	assertDir(t, dir, "existing.mp3", "into", "new")
	assertDir(t, into, "talk.mp3")

	// A cut keeps one part file, beside the target, for the next run to resume.
	s.Faults.CutResponse(fileRoute, 1000, 1)
	r = e.run("", "download", j.ID, "-o", "into/cut.mp3")
	e.want(r, 1)
	if want := "1000 B of it are saved: run `v2m download " + j.MP3FID + " -o into/cut.mp3` to resume the download\n"; !strings.HasSuffix(r.stderr, want) {
		t.Fatalf("stderr %q, want it to end with %q", r.stderr, want)
	}
	if names := dirNames(t, into); len(names) != 3 || !slices.Contains(names, "cut.mp3.part") {
		t.Fatalf("after a cut %s holds %v", into, names)
	}
	e.want(e.run("", "download", j.ID, "-o", "into/cut.mp3"), 0)
	assertFile(t, filepath.Join(into, "cut.mp3"), mp3)
	assertDir(t, into, "cut.mp3", "talk.mp3")
}

// writeTo writes data to path and returns path.
func writeTo(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// twoVideos writes a.mp4 and b.mp4 of the given sizes (multiples of 5) into a directory of
// their own and returns their paths.
func twoVideos(t *testing.T, sizeA, sizeB int) (a, b string) {
	t.Helper()
	dir := t.TempDir()
	a = writeTo(t, filepath.Join(dir, "a.mp4"), bytes.Repeat([]byte("a.mp4"), sizeA/5))
	b = writeTo(t, filepath.Join(dir, "b.mp4"), bytes.Repeat([]byte("b.mp4"), sizeB/5))
	return a, b
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// assertDir checks that dir holds exactly names (sorted).
func assertDir(t *testing.T, dir string, names ...string) {
	t.Helper()
	if got := dirNames(t, dir); !slices.Equal(got, names) {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}

// TestConvertMany: several files are converted, each saved into -o DIR, and a summary says
// what became of each; one failed job makes the exit 5 and is named.
func TestConvertMany(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000, Convert: gatedConvert(nil)})
	e := newEnv(t, s)
	e.login("a@example.com")
	src := t.TempDir()
	videos := map[string][]byte{"a.mp4": []byte("first video"), "b.mp4": []byte("fail: not a video"), "c.mkv": bytes.Repeat([]byte("third "), 500)}
	var files []string
	for _, name := range []string{"a.mp4", "b.mp4", "c.mkv"} {
		files = append(files, writeTo(t, filepath.Join(src, name), videos[name]))
	}
	out := filepath.Join(t.TempDir(), "mp3s") + "/"

	r := e.run("", append([]string{"convert", "-o", out, "--jobs", "2"}, files...)...)
	e.want(r, 5)
	if !strings.Contains(r.stderr, "v2m: 1 of 3 files failed: b.mp4") {
		t.Fatalf("stderr %q", r.stderr)
	}
	if strings.Contains(r.stderr, "\x1b[") {
		t.Fatalf("bars off a terminal: %q", r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("summary:\n%s", r.stdout)
	}
	for i, want := range [][]string{
		{files[0], "", "done", filepath.Join(out, "a.mp3")},
		{files[1], "", "failed", "job  failed: no audio stream"},
		{files[2], "", "done", filepath.Join(out, "c.mp3")},
	} {
		got := strings.Split(lines[i], "\t")
		if len(got) != 4 || len(got[1]) != 24 {
			t.Fatalf("summary line %q", lines[i])
		}
		want[3] = strings.Replace(want[3], "job  ", "job "+got[1]+" ", 1)
		if got[0] != want[0] || got[2] != want[2] || got[3] != want[3] {
			t.Errorf("summary line %q, want %q", got, want)
		}
	}
	assertFile(t, filepath.Join(out, "a.mp3"), testserver.FakeMP3(videos["a.mp4"]))
	assertFile(t, filepath.Join(out, "c.mp3"), testserver.FakeMP3(videos["c.mkv"]))
	assertDir(t, out, "a.mp3", "c.mp3")

	// Again, with --json: one results document, no error document after it.
	r = e.run("", append([]string{"convert", "-o", out, "--json", "--clobber"}, files...)...)
	e.want(r, 5)
	var doc struct {
		Results []struct {
			File  string
			Job   *client.Job
			Path  string
			Error *struct {
				Code    string
				Exit    int
				Message string
			}
		}
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(&doc); err != nil || dec.More() || len(doc.Results) != 3 {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	if res := doc.Results[0]; res.File != files[0] || res.Job == nil || res.Job.State != "done" || res.Path != filepath.Join(out, "a.mp3") || res.Error != nil {
		t.Errorf("result 0: %+v", res)
	}
	if res := doc.Results[1]; res.Job == nil || res.Job.State != "failed" || res.Path != "" || res.Error == nil ||
		res.Error.Code != "job_failed" || res.Error.Exit != 5 {
		t.Errorf("result 1: %+v", res)
	}
	if r.stderr != "v2m: 1 of 3 files failed: b.mp4\n" {
		t.Errorf("--json stderr %q", r.stderr)
	}

	// Without --clobber nothing is sent when an MP3 is there already.
	n := len(s.Requests(anyRoute))
	r = e.run("", append([]string{"convert", "-o", out}, files...)...)
	e.want(r, 2)
	if !strings.Contains(r.stderr, "a.mp3 exists: pass --clobber") || len(s.Requests(anyRoute)) != n {
		t.Fatalf("stderr %q; %d requests", r.stderr, len(s.Requests(anyRoute))-n)
	}
}

// TestUploadManyResumeHint: several uploads print a summary of their jobs; when one is cut
// off, it is named, with the command that resumes only the uploads cut off, which does.
func TestUploadManyResumeHint(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	e := newEnv(t, s)
	e.login("a@example.com")
	a, b := twoVideos(t, 2500, 6500)
	r := e.run("", "upload", a, b)
	e.want(r, 0)
	if lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"); len(lines) != 2 ||
		!strings.HasPrefix(lines[0], a+"\t") || !strings.HasPrefix(lines[1], b+"\t") || !strings.HasSuffix(lines[0], "\tqueued\t") {
		t.Fatalf("summary:\n%s", r.stdout)
	}
	// Both were forgotten once done, though they ran at once: a rerun starts over.
	var state struct{ Uploads map[string]any }
	if b, err := os.ReadFile(filepath.Join(e.configDir, "uploads.json")); err != nil || json.Unmarshal(b, &state) != nil || len(state.Uploads) != 0 {
		t.Fatalf("uploads remembered after they were done: %v %v", err, state.Uploads)
	}

	// Only b has a part 6, and it never gets through.
	s.Faults.CutRequestBody("PUT /v1/uploads/{id}/parts/6", 10, 100)
	r = e.run("", "upload", a, b, "--jobs", "1", "--parallel", "1")
	e.want(r, 1)
	want := "run `v2m upload --jobs=1 --parallel=1 " + b + "` to resume the uploads"
	if !strings.Contains(r.stderr, "v2m: 1 of 2 files failed: b.mp4; "+want) {
		t.Fatalf("stderr %q, want %q", r.stderr, want)
	}
	if lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], b+"\t\terror\tupload ") {
		t.Fatalf("summary:\n%s", r.stdout)
	}
	sixes := s.Requests("PUT /v1/uploads/{id}/parts/6") // the first run's, then this one's
	cut := partPuts(s, strings.Split(strings.TrimPrefix(sixes[len(sixes)-1].Path, "/v1/uploads/"), "/")[0])
	s.Faults.Reset()
	r = e.run("", "upload", "--jobs=1", "--parallel=1", b, "--json")
	e.want(r, 0)
	var job client.Job
	if err := json.Unmarshal([]byte(r.stdout), &job); err != nil {
		t.Fatal(err)
	}
	if puts := partPuts(s, job.ID); puts[0] != cut[0] || puts[6] != cut[6]+1 {
		t.Fatalf("the rerun sent %v after %v: not a resume", puts, cut)
	}
}

// TestInterruptedUploadSaysHowToResume: Ctrl-C during an upload exits 130 with how much the
// server has and the exact command that resumes it, which does.
func TestInterruptedUploadSaysHowToResume(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	e := newEnv(t, s)
	e.login("a@example.com")
	path, data := writeVideo(t, 5000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Part 2 breaks off, and Ctrl-C comes while it is on its way.
	s.Faults.CutRequestBody("PUT /v1/uploads/{id}/parts/2", 10, 100)
	arrived := s.Next("PUT /v1/uploads/{id}/parts/2")
	go func() { <-arrived; cancel() }()
	r := e.runCtx(ctx, "", "upload", path, "--parallel", "1", "--mono")
	e.want(r, 130)
	want := "\nv2m: interrupted; 2.0 KiB of 4.9 KiB of talk.mp4 are on the server: run `v2m upload --mono --parallel=1 " + path + "` to resume the upload\n"
	if !strings.HasSuffix(r.stderr, want) {
		t.Fatalf("stderr\n%q\nwant\n%q", r.stderr, want)
	}
	s.Faults.Reset()
	r = e.run("", "upload", "--mono", "--parallel=1", path, "--json")
	e.want(r, 0)
	var job client.Job
	if err := json.Unmarshal([]byte(r.stdout), &job); err != nil || !bytes.Equal(s.Video(t, job.ID), data) {
		t.Fatalf("resumed upload: %v %s", err, r.stdout)
	}
	if puts := partPuts(s, job.ID); puts[0] != 1 || puts[1] != 1 {
		t.Fatalf("PUTs per part %v: the resumed upload sent parts 0 and 1 again", puts)
	}
}

// TestInterruptedConvertOfSeveral: Ctrl-C during a convert of several files exits 130, after
// the summary, with the one command that resumes the uploads cut off and those not begun.
func TestInterruptedConvertOfSeveral(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	e := newEnv(t, s)
	e.login("a@example.com")
	a, b := twoVideos(t, 3000, 3000)
	out := filepath.Join(t.TempDir(), "mp3s") + "/"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Faults.CutRequestBody("PUT /v1/uploads/{id}/parts/1", 10, 100)
	arrived := s.Next("PUT /v1/uploads/{id}/parts/1")
	go func() { <-arrived; cancel() }()
	r := e.runCtx(ctx, "", "convert", a, b, "--jobs", "1", "--parallel", "1", "-o", out)
	e.want(r, 130)
	want := "\nv2m: interrupted; run `v2m convert --jobs=1 --output=" + out + " --parallel=1 " + a + " " + b + "` to resume the uploads\n"
	if !strings.HasSuffix(r.stderr, want) {
		t.Fatalf("stderr\n%q\nwant it to end with\n%q", r.stderr, want)
	}
	if lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"); len(lines) != 2 ||
		!strings.HasPrefix(lines[0], a+"\t\terror\t") || !strings.HasPrefix(lines[1], b+"\t\terror\t") {
		t.Fatalf("summary:\n%s", r.stdout)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("the output directory was made for nothing: %v", err)
	}
}

// TestInterruptedWaitSaysTheJobGoesOn: Ctrl-C while convert waits for its job exits 130 and
// says that the job goes on, and how to get its MP3.
func TestInterruptedWaitSaysTheJobGoesOn(t *testing.T) {
	s := testserver.New(t, testserver.Options{Convert: gatedConvert(nil)})
	e := newEnv(t, s)
	e.login("a@example.com")
	path := writeTo(t, filepath.Join(t.TempDir(), "talk.mp4"), []byte("hold: a video"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	polled := s.Next(eventsRoute) // the wait follows the job's events
	go func() { <-polled; cancel() }()
	r := e.runCtx(ctx, "", "convert", path, "-o", filepath.Join(t.TempDir(), "talk.mp3"))
	e.want(r, 130)
	id := s.Requests(completeRoute)[0].Path[len("/v1/uploads/") : len("/v1/uploads/")+24]
	if want := "\nv2m: interrupted; job " + id + " goes on on the server: run 'v2m wait " + id + "' to wait for it again\n"; !strings.HasSuffix(r.stderr, want) {
		t.Fatalf("stderr %q, want it to end with %q", r.stderr, want)
	}
}
