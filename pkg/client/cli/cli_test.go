package cli_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/v2m/v2m/internal/testmedia"
	"github.com/v2m/v2m/internal/testserver"
	"github.com/v2m/v2m/pkg/client"
	"github.com/v2m/v2m/pkg/client/cli"
	"github.com/v2m/v2m/pkg/client/reduce"
	"github.com/v2m/v2m/pkg/wire"
)

// env is one test's command-line environment.
type env struct {
	t         *testing.T
	s         *testserver.Server
	vars      map[string]string
	configDir string
	tty       bool
	ttyOut    bool     // stdout is a terminal
	passwords []string // what ReadPassword answers, in turn
	prompted  int      // how often ReadPassword was called
}

type result struct {
	code           int
	stdout, stderr string
}

func newEnv(t *testing.T, s *testserver.Server) *env {
	keyring.MockInit()
	dir := t.TempDir()
	return &env{t: t, s: s, configDir: dir, vars: map[string]string{"V2M_SERVER": s.URL, "V2M_CONFIG_DIR": dir}}
}

func (e *env) run(stdin string, args ...string) result {
	e.t.Helper()
	return e.runCtx(context.Background(), stdin, args...)
}

// runCtx runs the command line args with ctx, whose end is what Ctrl-C does.
func (e *env) runCtx(ctx context.Context, stdin string, args ...string) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(ctx, args, cli.Deps{
		Stdin:       strings.NewReader(stdin),
		Stdout:      &out,
		Stderr:      &errb,
		Getenv:      func(k string) string { return e.vars[k] },
		StdinIsTTY:  e.tty,
		StdoutIsTTY: e.ttyOut,
		StderrIsTTY: false,
		ReadPassword: func(context.Context) ([]byte, error) {
			e.prompted++
			if len(e.passwords) == 0 {
				return nil, errors.New("no more passwords")
			}
			p := e.passwords[0]
			e.passwords = e.passwords[1:]
			return []byte(p), nil
		},
	})
	return result{code, out.String(), errb.String()}
}

func (e *env) want(r result, code int) {
	e.t.Helper()
	if r.code != code {
		e.t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
}

// Route patterns of the test server's requests.
const (
	anyRoute      = "/"
	partRoute     = "PUT /v1/uploads/{id}/parts/{n}"
	completeRoute = "POST /v1/uploads/{id}/complete"
	jobRoute      = "GET /v1/jobs/{id}"
	eventsRoute   = "GET /v1/jobs/{id}/events"
	fileRoute     = "GET /v1/files/{fid}"
	revokeRoute   = "DELETE /v1/tokens/current"
)

// login logs in a fresh account through the CLI.
func (e *env) login(email string) {
	e.t.Helper()
	e.s.Signup(e.t, email, "password1")
	e.want(e.run("password1\n", "login", "--email", email, "--password-stdin"), 0)
}

func TestRegisterLoginWhoamiLogout(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)

	r := e.run("password1\n", "register", "--email", "A@example.com", "--password-stdin")
	e.want(r, 0)
	if !strings.Contains(r.stdout, "registered a@example.com") {
		t.Fatalf("stdout %q", r.stdout)
	}
	r = e.run("password1\n", "register", "--email", "a@example.com", "--password-stdin")
	e.want(r, 1)
	if r.stderr != "v2m: register a@example.com: a user with email a@example.com already exists (conflict)\n" {
		t.Fatalf("stderr %q", r.stderr)
	}
	e.want(e.run("", "whoami"), 3)

	e.want(e.run("wrong-password\n", "login", "--email", "a@example.com", "--password-stdin"), 3)
	r = e.run("password1\r\n", "login", "--email", "a@example.com", "--password-stdin")
	e.want(r, 0)
	if strings.Contains(r.stderr, "warning") {
		t.Fatalf("warned with a working keyring: %q", r.stderr)
	}
	r = e.run("", "whoami")
	e.want(r, 0)
	if r.stdout != "a@example.com\n" {
		t.Fatalf("whoami printed %q", r.stdout)
	}
	r = e.run("", "whoami", "--json")
	e.want(r, 0)
	var me map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &me); err != nil || me["email"] != "a@example.com" || me["issuer"] != "v2m" {
		t.Fatalf("whoami --json: %v %s", err, r.stdout)
	}
	e.want(e.run("", "logout"), 0)
	e.want(e.run("", "whoami"), 3)
}

func TestPasswordStdinStripsOneNewline(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	e.want(e.run("password1\n\n", "register", "--email", "a@example.com", "--password-stdin"), 0)
	c, err := client.New(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(context.Background(), "a@example.com", "password1\n"); err != nil {
		t.Fatalf("the password lost more than one newline: %v", err)
	}
	if _, err := c.Login(context.Background(), "a@example.com", "password1"); !client.IsUnauthorized(err) {
		t.Fatalf("both newlines were stripped: %v", err)
	}
	e.want(e.run("password2\r\n", "register", "--email", "b@example.com", "--password-stdin"), 0)
	if _, err := c.Login(context.Background(), "b@example.com", "password2"); err != nil {
		t.Fatalf("CRLF not stripped: %v", err)
	}
	r := e.run("\n", "register", "--email", "c@example.com", "--password-stdin")
	e.want(r, 2)
	e.want(e.run("password1\n", "login", "--password-stdin"), 2)
}

func TestNoPromptWithoutTTY(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	e.passwords = []string{"password1"}
	for _, args := range [][]string{{"login"}, {"login", "--email", "a@example.com"}, {"register"}} {
		r := e.run("a@example.com\n", args...)
		e.want(r, 2)
		if strings.Contains(r.stderr, "Password:") || strings.Contains(r.stderr, "Email:") {
			t.Fatalf("%v prompted: %q", args, r.stderr)
		}
	}
	if e.prompted != 0 {
		t.Fatalf("ReadPassword called %d times", e.prompted)
	}
	if reqs := s.Requests(anyRoute); len(reqs) != 0 {
		t.Fatalf("requests sent: %+v", reqs)
	}
}

// TestInterruptExits130: Ctrl-C at the password prompt (the signal ends the command's
// context, and the terminal read returns) exits 130 with a plain word, not the error of a
// request cut off; nothing is registered.
func TestInterruptExits130(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	e.tty = true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb bytes.Buffer
	code := cli.Run(ctx, []string{"register", "--email", "a@example.com"}, cli.Deps{
		Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		Getenv:     func(k string) string { return e.vars[k] },
		StdinIsTTY: true,
		ReadPassword: func(context.Context) ([]byte, error) {
			cancel() // SIGINT while the prompt waits
			return []byte(""), nil
		},
	})
	if code != cli.ExitInterrupted || !strings.Contains(errb.String(), "v2m: interrupted") || strings.Contains(errb.String(), "Post ") {
		t.Fatalf("exit %d, stderr %q; want 130 and \"interrupted\"", code, errb.String())
	}
	if n := len(s.Requests("POST /v1/users")); n != 0 {
		t.Errorf("%d registrations sent after the interrupt", n)
	}
}

func TestPromptOnTTY(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	s.Signup(t, "a@example.com", "password1")
	e.tty = true
	e.passwords = []string{"password1"}
	r := e.run("a@example.com\n", "login")
	e.want(r, 0)
	if !strings.Contains(r.stderr, "Email: ") || !strings.Contains(r.stderr, "Password: ") || e.prompted != 1 {
		t.Fatalf("prompts %q, ReadPassword called %d times", r.stderr, e.prompted)
	}
	e.want(e.run("", "whoami"), 0)
}

func TestTokenFileFallbackWarns(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	s.Signup(t, "a@example.com", "password1")
	keyring.MockInitWithError(errors.New(`exec: "dbus-launch": executable file not found in $PATH`))
	defer keyring.MockInit()
	r := e.run("password1\n", "login", "--email", "a@example.com", "--password-stdin")
	e.want(r, 0)
	path := filepath.Join(e.configDir, "tokens.json")
	if r.stderr != "warning: no OS keyring; token stored in "+path+"\n" {
		t.Fatalf("stderr %q", r.stderr)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	r = e.run("", "whoami")
	e.want(r, 0)
	if r.stderr != "" {
		t.Fatalf("whoami warned: %q", r.stderr)
	}
}

func TestEnvTokenOverrides(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	e.vars["V2M_TOKEN"] = s.Signup(t, "env@example.com", "password1")
	r := e.run("", "whoami")
	e.want(r, 0)
	if r.stdout != "env@example.com\n" {
		t.Fatalf("whoami %q", r.stdout)
	}
	r = e.run("", "logout")
	e.want(r, 1)
	if !strings.Contains(r.stderr, "V2M_TOKEN") {
		t.Fatalf("stderr %q", r.stderr)
	}
}

func TestServerFromConfigFileAndFlag(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	e.login("a@example.com")
	delete(e.vars, "V2M_SERVER")
	// The default server is not this one: without config the token is not found.
	e.want(e.run("", "whoami"), 3)
	if err := os.WriteFile(filepath.Join(e.configDir, "config.yaml"), []byte("server: "+s.URL+"/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.want(e.run("", "whoami"), 0)
	// The flag wins over the environment, which wins over the file.
	e.vars["V2M_SERVER"] = "http://127.0.0.1:1"
	e.want(e.run("", "whoami"), 3)
	e.want(e.run("", "whoami", "--server", s.URL), 0)
	e.want(e.run("", "whoami", "--server", "ftp://x"), 2)
}

func writeVideo(t *testing.T, size int) (string, []byte) {
	t.Helper()
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
	p := filepath.Join(t.TempDir(), "talk.mp4")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, data
}

// sdk returns a client of the test server with tok, for a test to set up server state.
func sdk(t *testing.T, s *testserver.Server, tok string) *client.Client {
	t.Helper()
	c, err := client.New(s.URL, client.WithToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rawDo sends one request to the test server with tok, bypassing the SDK, and returns the
// status, decoding a JSON answer into out when out is not nil.
func rawDo(t *testing.T, s *testserver.Server, tok, method, path string, body []byte, hdr http.Header, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// seedUpload creates an upload of data with tok and sends the given parts, as an earlier,
// interrupted run would have, and returns its id.
func seedUpload(t *testing.T, s *testserver.Server, tok string, data []byte, parts ...int) string {
	t.Helper()
	in, _ := json.Marshal(wire.NewUpload{Filename: "talk.mp4", Size: int64(len(data))})
	var up wire.Upload
	if code := rawDo(t, s, tok, "POST", "/v1/uploads", in, nil, &up); code != 201 {
		t.Fatalf("create upload: %d", code)
	}
	for _, n := range parts {
		part := data[int64(n)*up.PartSize : int64(n)*up.PartSize+up.PartLen(n)]
		sum := fmt.Sprintf("%08x", crc32.Checksum(part, crc32.MakeTable(crc32.Castagnoli)))
		if code := rawDo(t, s, tok, "PUT", fmt.Sprintf("/v1/uploads/%s/parts/%d", up.ID, n), part, http.Header{"X-Part-Crc32c": {sum}}, nil); code != 204 {
			t.Fatalf("part %d: %d", n, code)
		}
	}
	return up.ID
}

// partPuts counts the part PUTs the server saw for upload id, by part number.
func partPuts(s *testserver.Server, id string) map[int]int {
	out := map[int]int{}
	for _, r := range s.Requests("PUT /v1/uploads/" + id + "/parts/{n}") {
		n, _ := strconv.Atoi(r.Path[strings.LastIndexByte(r.Path, '/')+1:])
		out[n]++
	}
	return out
}

// gatedConvert converts like testserver.FakeConvert, except that a video starting with "fail"
// fails for good with "no audio stream" and one starting with "hold" waits for release
// (for ever when release is nil).
func gatedConvert(release <-chan struct{}) testserver.ConvertFunc {
	return func(ctx context.Context, src, dst string, progress func(int)) error {
		video, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		switch {
		case bytes.HasPrefix(video, []byte("fail")):
			return testserver.Fail("no audio stream")(ctx, src, dst, progress)
		case bytes.HasPrefix(video, []byte("hold")):
			progress(40)
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return testserver.FakeConvert(ctx, src, dst, progress)
	}
}

// addJob uploads video as name with c and returns the job; with final it waits for the job
// to be done or failed first.
func addJob(t *testing.T, c *client.Client, name string, video []byte, final bool) *client.Job {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, video, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	j, err := c.Upload(ctx, p, client.UploadOptions{})
	if err == nil && final {
		j, err = c.Wait(ctx, j.ID, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// deadURL returns the address of a server that is gone.
func deadURL() string {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	return srv.URL
}

func TestUploadResumesFromState(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000, Convert: gatedConvert(nil)})
	e := newEnv(t, s)
	e.login("a@example.com")
	path, data := writeVideo(t, 4500)
	copy(data, "hold") // the converter holds the job, so only the upload runs during the test
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	id := seedUpload(t, s, storedToken(t, s.URL), data, 0, 2)
	seeded := len(s.Requests(partRoute))
	fi, _ := os.Stat(path)
	state := client.NewFileState(filepath.Join(e.configDir, "uploads.json"))
	if err := state.Save(client.UploadKey{Server: s.URL, Path: path, Size: fi.Size(), ModTime: fi.ModTime()}, id); err != nil {
		t.Fatal(err)
	}
	r := e.run("", "upload", path, "--json", "--parallel", "2")
	e.want(r, 0)
	puts := partPuts(s, id)
	if len(puts) != 5 || puts[0] != 1 || puts[1] != 1 || puts[2] != 1 || puts[3] != 1 || puts[4] != 1 {
		t.Fatalf("PUTs per part %v, want parts 1, 3 and 4 once after the seeded 0 and 2", puts)
	}
	if n := len(s.Requests(partRoute)) - seeded; n != 3 {
		t.Fatalf("%d PUTs in all", n)
	}
	var job map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &job); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	for _, k := range []string{"id", "state", "progress", "error", "filename", "size", "mp3_fid", "created_at", "updated_at", "finished_at"} {
		if _, ok := job[k]; !ok {
			t.Errorf("job JSON lacks %q: %s", k, r.stdout)
		}
	}
	if job["id"] != id || job["state"] != "queued" || job["filename"] != "talk.mp4" || job["size"] != float64(4500) {
		t.Fatalf("job %v", job)
	}
	if !bytes.Equal(s.Video(t, id), data) {
		t.Fatal("assembled video differs")
	}
	if r.stderr != "" {
		t.Fatalf("--json wrote to stderr: %q", r.stderr)
	}
}

// TestUploadResumesAfterInterruption: an upload that gives up on a part which never gets
// through is taken up again by the next run, which sends only what the server lacks.
func TestUploadResumesAfterInterruption(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	e := newEnv(t, s)
	e.login("a@example.com")
	path, data := writeVideo(t, 3000)
	id, _ := interruptAndResume(t, s, e, path)
	if !bytes.Equal(s.Video(t, id), data) {
		t.Fatal("assembled video differs")
	}
}

// interruptAndResume uploads path with a fault that keeps part 2 from arriving, checks that
// the upload fails naming it, then uploads again without the fault and checks that this
// resumes the same upload, sending part 2 and nothing before it again. It returns the
// upload's id and the job.
func interruptAndResume(t *testing.T, s *testserver.Server, e *env, path string) (string, client.Job) {
	t.Helper()
	s.Faults.CutRequestBody("PUT /v1/uploads/{id}/parts/2", 10, 100)
	r := e.run("", "upload", path, "--parallel", "1")
	e.want(r, 1) // the server answers, but not to part 2: an error, not an unreachable server
	if !strings.Contains(r.stderr, "part 2") || !strings.Contains(r.stderr, "run `v2m upload --parallel=1 "+path+"` to resume the upload") {
		t.Fatalf("stderr %q, want part 2 named and the command that resumes the upload", r.stderr)
	}
	if strings.Contains(r.stderr, "Put ") || strings.Contains(r.stderr, "tcp") {
		t.Fatalf("stderr %q shows the transport's internals", r.stderr)
	}
	reqs := s.Requests(partRoute)
	if len(reqs) == 0 {
		t.Fatal("no part was sent")
	}
	id := strings.Split(strings.TrimPrefix(reqs[0].Path, "/v1/uploads/"), "/")[0]
	before := partPuts(s, id)
	s.Faults.Reset()
	r = e.run("", "upload", path, "--json")
	e.want(r, 0)
	var job client.Job
	if err := json.Unmarshal([]byte(r.stdout), &job); err != nil || job.ID != id {
		t.Fatalf("the second run made job %v %s, want the first run's upload %s", err, r.stdout, id)
	}
	if after := partPuts(s, id); after[0] != before[0] || after[1] != before[1] || after[2] != before[2]+1 {
		t.Fatalf("the second run sent %v after %v, want part 2 and the parts after it only", after, before)
	}
	return id, job
}

// TestAudioOnlyUploadResumes: a video is sent as its audio-only reduction, which the job
// records with the video's size; an interrupted upload of it resumes with the missing parts
// only, because the reduction is the same bytes every time; --full sends the whole file.
func TestAudioOnlyUploadResumes(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 16 << 10})
	e := newEnv(t, s)
	e.login("a@example.com")
	path := testmedia.MustGenerate(t, t.TempDir(), testmedia.Sample{Name: "talk", Container: "mp4", Args: []string{
		"-f", "lavfi", "-i", "testsrc=duration=8:size=320x240:rate=25,noise=alls=20:allf=t",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=8",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"}})
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	lay, err := reduce.Reduce(t.Context(), f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	want, err := io.ReadAll(io.NewSectionReader(lay.Open(f), 0, lay.Size()))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 3*16<<10 || int64(len(want))*3 > fi.Size() {
		t.Fatalf("the reduction of %d bytes has %d: not a test of a multi-part audio-only upload", fi.Size(), len(want))
	}

	_, job := interruptAndResume(t, s, e, path)
	if job.Size != int64(len(want)) || job.SourceSize != fi.Size() || job.Filename != "talk.mp4" {
		t.Errorf("job: size %d, source size %d, name %q; want %d, %d, talk.mp4", job.Size, job.SourceSize, job.Filename, len(want), fi.Size())
	}
	if !bytes.Equal(s.Video(t, job.ID), want) {
		t.Fatal("the server got other bytes than the reduction")
	}

	r := e.run("", "upload", path, "--full", "--json")
	e.want(r, 0)
	var whole client.Job
	if err := json.Unmarshal([]byte(r.stdout), &whole); err != nil || whole.Size != fi.Size() || whole.SourceSize != 0 {
		t.Fatalf("--full: %v %s", err, r.stdout)
	}
}

// TestUploadSurvivesLostAnswers: a part PUT whose connection breaks and a complete whose
// answer is lost are sent again, and the upload ends with one job.
func TestUploadSurvivesLostAnswers(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	e := newEnv(t, s)
	e.login("a@example.com")
	path, data := writeVideo(t, 3500)
	s.Faults.CutRequestBody("PUT /v1/uploads/{id}/parts/1", 300, 1)
	s.Faults.LoseAnswer(completeRoute, 1)
	r := e.run("", "upload", path)
	e.want(r, 0)
	id := strings.TrimSpace(r.stdout)
	if !bytes.Equal(s.Video(t, id), data) {
		t.Fatal("assembled video differs")
	}
	if puts := partPuts(s, id); len(puts) != 4 || puts[1] != 2 {
		t.Fatalf("PUTs per part %v, want part 1 twice", puts)
	}
	if reqs := s.Requests(completeRoute); len(reqs) != 2 || reqs[0].Fault != "LoseAnswer" {
		t.Fatalf("completes %+v, want the lost one and one more", reqs)
	}
	r = e.run("", "jobs", "--json")
	e.want(r, 0)
	var list struct{ Jobs []client.Job }
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Jobs) != 1 || list.Jobs[0].ID != id {
		t.Fatalf("jobs after a lost answer: %v %s", err, r.stdout)
	}
}

func TestUploadWaitDownloadAndConvert(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	e := newEnv(t, s)
	e.login("a@example.com")
	path, data := writeVideo(t, 12345)
	want := testserver.FakeMP3(data)

	out := filepath.Join(t.TempDir(), "out.mp3")
	r := e.run("", "upload", path, "-o", out)
	e.want(r, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 1 || len(lines[0]) != 24 {
		t.Fatalf("upload stdout %q, want the job id", r.stdout)
	}
	for _, step := range []string{"uploading talk.mp4", "uploaded talk.mp4: job " + lines[0], "job " + lines[0] + " done", "saved " + out} {
		if !strings.Contains(r.stderr, step) {
			t.Errorf("stderr lacks %q: %s", step, r.stderr)
		}
	}
	assertFile(t, out, want)

	// convert with the default output name, in the working directory.
	dir := t.TempDir()
	t.Chdir(dir)
	r = e.run("", "convert", path, "--json")
	e.want(r, 0)
	var res struct {
		Job  client.Job `json:"job"`
		Path string     `json:"path"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Path != "talk.mp3" || res.Job.State != "done" {
		t.Fatalf("convert --json: %v %s", err, r.stdout)
	}
	assertFile(t, filepath.Join(dir, "talk.mp3"), want)

	// convert refuses to overwrite its input.
	mp3In := filepath.Join(dir, "song.mp3")
	if err := os.WriteFile(mp3In, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.want(e.run("", "convert", mp3In, "-o", mp3In), 2)

	// download by job id with the default name from the job's file name.
	if err := os.Remove(filepath.Join(dir, "talk.mp3")); err != nil {
		t.Fatal(err)
	}
	r = e.run("", "download", lines[0])
	e.want(r, 0)
	if r.stdout != "talk.mp3\n" {
		t.Fatalf("download printed %q", r.stdout)
	}
	assertFile(t, filepath.Join(dir, "talk.mp3"), want)
}

// TestSplitChaptersIntoDirectory: a job split by chapters is saved as one MP3 per chapter, by
// convert into -o DIR or the input's name, and by download JOB into the video's name.
func TestSplitChaptersIntoDirectory(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	e := newEnv(t, s)
	e.login("a@example.com")
	path, data := writeVideo(t, 2345)
	mp3 := testserver.FakeMP3(data)
	names := []string{"01 - Part one.mp3", "02 - Part two.mp3"}
	check := func(dir string) {
		t.Helper()
		for i, n := range names {
			assertFile(t, filepath.Join(dir, n), append(slices.Clone(mp3), byte('1'+i)))
		}
	}

	out := filepath.Join(t.TempDir(), "album")
	r := e.run("", "convert", path, "--split-chapters", "-o", out+"/", "--json")
	e.want(r, 0)
	var res struct {
		Job   client.Job `json:"job"`
		Path  string     `json:"path"`
		Files []struct {
			FID, Path string
			Size      int64
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res.Files) != 2 || len(res.Job.Files) != 2 ||
		res.Files[1].Path != filepath.Join(out, names[1]) || res.Files[0].FID != res.Job.Files[0].FID {
		t.Fatalf("convert --split-chapters --json: %v %s", err, r.stdout)
	}
	check(out)

	dir := t.TempDir()
	t.Chdir(dir)
	e.want(e.run("", "convert", path, "--split-chapters"), 0)
	check(filepath.Join(dir, "talk"))

	r = e.run("", "download", res.Job.ID)
	e.want(r, 2) // its MP3s are there: not replaced without --clobber
	if !strings.Contains(r.stderr, "--clobber") {
		t.Errorf("stderr %q, want --clobber named", r.stderr)
	}
	r = e.run("", "download", res.Job.ID, "--clobber")
	e.want(r, 0)
	if r.stdout != "talk\n" {
		t.Errorf("download of a split job printed %q, want its directory", r.stdout)
	}
	check(filepath.Join(dir, "talk"))
	// -o - writes the zip of its MP3s.
	r = e.run("", "download", res.Job.ID, "-o", "-")
	e.want(r, 0)
	if zr, err := zip.NewReader(strings.NewReader(r.stdout), int64(len(r.stdout))); err != nil || len(zr.File) != 2 || zr.File[1].Name != names[1] {
		t.Errorf("download -o - of a split job: %v, want the zip of its two MP3s", err)
	}
	// A single file of the job, by its fid.
	r = e.run("", "download", res.Job.Files[1].FID, "-o", "two.mp3")
	e.want(r, 0)
	assertFile(t, filepath.Join(dir, "two.mp3"), append(slices.Clone(mp3), '2'))
}

func TestJobsAndStatusOutput(t *testing.T) {
	s := testserver.New(t, testserver.Options{Convert: gatedConvert(nil)})
	e := newEnv(t, s)
	e.login("a@example.com")
	r := e.run("", "jobs", "--json")
	e.want(r, 0)
	if strings.TrimSpace(r.stdout) != `{`+"\n"+`  "jobs": []`+"\n"+`}` {
		t.Fatalf("empty jobs JSON %q", r.stdout)
	}
	c := sdk(t, s, storedToken(t, s.URL))
	failed := addJob(t, c, "bad.mp4", []byte("fail: not a video"), true).ID
	done := addJob(t, c, "good.mp4", []byte("a video"), true).ID
	e.ttyOut = true // the table; TestJobsForScriptsAndPeople has the lines for scripts
	r = e.run("", "jobs")
	e.want(r, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "ID STATE PROGRESS FILE CREATED" {
		t.Fatalf("table:\n%s", r.stdout)
	}
	if f := strings.Fields(lines[1]); f[0] != done || f[1] != "done" || f[2] != "100%" || f[3] != "good.mp4" {
		t.Fatalf("row %q", lines[1])
	}
	if f := strings.Fields(lines[2]); f[0] != failed || f[1] != "failed" {
		t.Fatalf("row %q", lines[2])
	}
	r = e.run("", "jobs", "--json")
	e.want(r, 0)
	var list struct{ Jobs []client.Job }
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Jobs) != 2 || list.Jobs[0].MP3FID == "" {
		t.Fatalf("jobs --json: %v %s", err, r.stdout)
	}
	r = e.run("", "status", failed)
	e.want(r, 0)
	if !strings.Contains(r.stdout, "State:    failed") || !strings.Contains(r.stdout, "Error:    no audio stream") {
		t.Fatalf("status:\n%s", r.stdout)
	}
}

func TestExitCodes(t *testing.T) {
	// The clock moves only to mint an expired token below.
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	s := testserver.New(t, testserver.Options{Convert: gatedConvert(nil), Now: now})
	e := newEnv(t, s)
	e.login("a@example.com")
	c := sdk(t, s, storedToken(t, s.URL))
	failed := addJob(t, c, "bad.mp4", []byte("fail: not a video"), true).ID
	pending := addJob(t, c, "slow.mp4", []byte("hold: a video"), false).ID // held until the test ends
	theirs := addJob(t, sdk(t, s, s.Signup(t, "b@example.com", "password1")), "theirs.mp4", []byte("a video"), true).ID

	e.want(e.run("", "upload"), 2)
	e.want(e.run("", "upload", "a", "b"), 2)
	e.want(e.run("", "jobs", "--bogus"), 2)
	e.want(e.run("", "upload", "x", "--parallel", "0"), 2)

	r := e.run("", "status", theirs)
	e.want(r, 4)
	if r.stderr != "v2m: job "+theirs+" not found\n" {
		t.Fatalf("stderr %q", r.stderr)
	}
	e.want(e.run("", "download", "nosuchfile"), 4)
	if leftovers, _ := filepath.Glob("nosuchfile.mp3*"); len(leftovers) != 0 {
		t.Fatalf("a failed download left %v behind", leftovers)
	}

	r = e.run("", "wait", failed)
	e.want(r, 5)
	if !strings.Contains(r.stderr, "failed: no audio stream") {
		t.Fatalf("stderr %q", r.stderr)
	}
	e.want(e.run("", "download", failed), 5)
	r = e.run("", "download", pending)
	e.want(r, 1)
	if !strings.Contains(r.stderr, "not done yet") {
		t.Fatalf("stderr %q", r.stderr)
	}

	r = e.run("", "wait", pending, "--timeout", "200ms", "--json")
	e.want(r, 6)
	var doc struct {
		Error struct {
			Code    string
			Message string
			Exit    int
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.Error.Code != "timeout" || doc.Error.Exit != 6 ||
		!strings.Contains(doc.Error.Message, "timed out after 200ms") {
		t.Fatalf("timeout JSON: %v %s", err, r.stdout)
	}

	r = e.run("", "wait", failed, "--json")
	e.want(r, 5)
	var failDoc struct {
		Error struct{ Code string }
		Job   client.Job
	}
	if err := json.Unmarshal([]byte(r.stdout), &failDoc); err != nil || failDoc.Error.Code != "job_failed" || failDoc.Job.Error != "no audio stream" {
		t.Fatalf("failed JSON: %v %s", err, r.stdout)
	}

	// An expired token is 401: the server issues one a day and a minute ago.
	skew.Store(int64(-24*time.Hour - time.Minute))
	e.vars["V2M_TOKEN"] = s.Signup(t, "c@example.com", "password1")
	skew.Store(0)
	r = e.run("", "jobs", "--json")
	e.want(r, 3)
	if !strings.Contains(r.stdout, `"code": "unauthorized"`) {
		t.Fatalf("401 JSON %s", r.stdout)
	}
	delete(e.vars, "V2M_TOKEN")

	// A server that is gone, for which v2m keeps a token.
	url := deadURL()
	if err := keyring.Set(client.KeyringService, client.NormalizeServer(url), storedToken(t, s.URL)); err != nil {
		t.Fatal(err)
	}
	e.vars["V2M_SERVER"] = url
	r = e.run("", "jobs")
	e.want(r, 7)
	if r.stderr != "v2m: cannot reach the server at "+url+": connection refused — is v2md running?\n" {
		t.Fatalf("stderr %q", r.stderr)
	}
}

// TestWaitPrintsDoneJob: the job finishes while wait follows its events.
func TestWaitPrintsDoneJob(t *testing.T) {
	release := make(chan struct{})
	s := testserver.New(t, testserver.Options{Convert: gatedConvert(release)})
	e := newEnv(t, s)
	e.login("a@example.com")
	id := addJob(t, sdk(t, s, storedToken(t, s.URL)), "x.mp4", []byte("hold: a video"), false).ID
	poll := s.Next(eventsRoute)
	go func() { <-poll; close(release) }()
	r := e.run("", "wait", id)
	e.want(r, 0)
	if f := strings.Fields(r.stdout); len(f) != 3 || f[0] != id || f[1] != "done" || f[2] == "" {
		t.Fatalf("wait printed %q", r.stdout)
	}
}

func TestDownloadResumesAfterCut(t *testing.T) {
	data := bytes.Repeat([]byte("mp3 frame "), 30_000)
	s := testserver.New(t, testserver.Options{Convert: func(_ context.Context, _, dst string, _ func(int)) error {
		return os.WriteFile(dst, data, 0o600)
	}})
	e := newEnv(t, s)
	e.login("a@example.com")
	fid := addJob(t, sdk(t, s, storedToken(t, s.URL)), "talk.mp4", []byte("a video"), true).MP3FID
	out := filepath.Join(t.TempDir(), "x.mp3")

	s.Faults.CutResponse(fileRoute, 120_000, 1)
	r := e.run("", "download", fid, "-o", out)
	e.want(r, 1)
	fi, err := os.Stat(out + ".part")
	if err != nil {
		t.Fatal(err)
	}
	r = e.run("", "download", fid, "-o", out, "--json")
	e.want(r, 0)
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc["fid"] != fid || doc["path"] != out || doc["size"] != float64(len(data)) {
		t.Fatalf("download --json: %v %s", err, r.stdout)
	}
	assertFile(t, out, data)
	reqs := s.Requests(fileRoute)
	if len(reqs) != 2 || reqs[0].Fault != "CutResponse" {
		t.Fatalf("downloads %+v", reqs)
	}
	if got, want := reqs[1].Header.Get("Range"), "bytes="+itoa(fi.Size())+"-"; got != want {
		t.Fatalf("the second download asked Range %q, want %q", got, want)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func assertFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d expected", path, len(got), len(want))
	}
}

// TestUploadOptionFlagsReachTheJob: the option flags of upload go to the server, the job has
// them, and upload, status and jobs show them (--json as the API does; status as flags).
func TestUploadOptionFlagsReachTheJob(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	e.login("a@example.com")
	path, _ := writeVideo(t, 3000)
	const want = `"options": {
    "bitrate": "192k",
    "start": "5s",
    "normalize": true,
    "loudness": -20,
    "cover": false
  },
  "created_at"`
	r := e.run("", "upload", path, "--bitrate", "192k", "--start=5s", "--normalize=-20", "--no-cover", "--json")
	e.want(r, 0)
	if !strings.Contains(r.stdout, want) {
		t.Fatalf("upload --json:\n%s\nwant it to contain\n%s", r.stdout, want)
	}
	var j client.Job
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil {
		t.Fatal(err)
	}
	// What the server keeps, seen by another client.
	got, err := sdk(t, s, storedToken(t, s.URL)).Job(context.Background(), j.ID)
	if err != nil || got.Options == nil || got.Options.Bitrate != "192k" || got.Options.Loudness == nil || *got.Options.Loudness != -20 {
		t.Fatalf("the server's job: %+v, %v", got, err)
	}
	r = e.run("", "status", j.ID, "--json")
	e.want(r, 0)
	if !strings.Contains(r.stdout, want) {
		t.Fatalf("status --json:\n%s", r.stdout)
	}
	r = e.run("", "status", j.ID)
	e.want(r, 0)
	if !strings.Contains(r.stdout, "Options:  --bitrate 192k --start 5s --normalize=-20 --no-cover\n") {
		t.Fatalf("status:\n%s", r.stdout)
	}
	plain := e.run("", "upload", path, "--json") // another job, of the default options
	e.want(plain, 0)
	if strings.Contains(plain.stdout, "options") {
		t.Fatalf("a job of the default options shows options:\n%s", plain.stdout)
	}
	r = e.run("", "jobs", "--json")
	e.want(r, 0)
	if strings.Count(r.stdout, `"options"`) != 1 || !strings.Contains(r.stdout, `"bitrate": "192k"`) {
		t.Fatalf("jobs --json:\n%s", r.stdout)
	}
}

// TestBadOptionFlagExitsBeforeAnyRequest: a bad option value is a usage error (exit 2) with
// the server's message, and neither upload nor convert sends a single request.
func TestBadOptionFlagExitsBeforeAnyRequest(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	e.login("a@example.com")
	path, _ := writeVideo(t, 3000)
	before := len(s.Requests(anyRoute))
	for _, args := range [][]string{
		{"upload", path, "--quality", "12"},
		{"convert", path, "--quality", "12", "-o", filepath.Join(t.TempDir(), "out.mp3")},
		{"upload", path, "--bitrate", "100k", "--wait"},
		{"convert", path, "--start", "2m", "--end", "1m", "-o", filepath.Join(t.TempDir(), "out.mp3")},
	} {
		r := e.run("", args...)
		e.want(r, 2)
		if !strings.Contains(r.stderr, `option "`) {
			t.Errorf("%v: stderr %q, want the option's message", args, r.stderr)
		}
	}
	if r := e.run("", "upload", path, "--quality", "12"); r.stderr != "v2m: --quality: option \"quality\" must be 0 (best) to 9, not 12 (see 'v2m --help')\n" {
		t.Errorf("stderr %q", r.stderr)
	}
	if n := len(s.Requests(anyRoute)) - before; n != 0 {
		t.Fatalf("%d requests for bad options: %v", n, s.Requests(anyRoute)[before:])
	}
}
