package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testmedia"
	"github.com/v2m/v2m/pkg/server/api/web"
	"github.com/v2m/v2m/pkg/wire"
)

// artifacts is where the browser tests leave their screenshots, from the e2e directory.
var artifacts = filepath.Join("..", ".cache", "web")

// chromium finds Chromium: missing, the test is skipped, or failed under CI=true.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "chromium not found in PATH (apt-get install chromium)")
	return ""
}

// tab is a tab of a headless Chromium that runs for one test.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// cspProbe records, in the page, every request the Content-Security-Policy refuses.
const cspProbe = `window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));`

// newTab starts Chromium with a viewport of w×h CSS pixels. At the end of the test, the
// page's uncaught exceptions, console errors and refused requests fail it.
func newTab(t *testing.T, w, h int64) *tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, h)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	tb := &tab{t: t, ctx: ctx}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.console = append(tb.console, m)
			tb.mu.Unlock()
		}
	}()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tb.checkConsole)
	return tb
}

// networkLog is the browser's own line for an answer that is not a success, which the
// tests cause on purpose (a refused option, a file too large, a route not there yet, a
// connection dropped).
var networkLog = regexp.MustCompile(`^Failed to load resource: (the server responded with a status of (400|401|404|413)\b|net::ERR_EMPTY_RESPONSE)`)

func (tb *tab) checkConsole() {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, m := range tb.console {
		switch {
		case m.IsException():
			tb.t.Errorf("the page threw: %s\n%s", m.Text, m.URL)
		case strings.Contains(m.Text, "Content Security Policy"):
			tb.t.Errorf("the Content-Security-Policy refused something: %s", m.Text)
		case m.Type == chromedp.ConsoleError && !networkLog.MatchString(m.Text):
			tb.t.Errorf("console error: %s (%s)", m.Text, m.URL)
		}
	}
}

// do runs actions with a deadline.
func (tb *tab) do(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("browser: %v\npage text:\n%s", err, tb.pageText())
	}
}

func (tb *tab) pageText() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return s
}

func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("text of %s: %v\npage text:\n%s", sel, err, tb.pageText())
	}
	return strings.TrimSpace(s)
}

// waitFor polls a JavaScript expression until it is true.
func (tb *tab) waitFor(timeout time.Duration, expr string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, timeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout))); err != nil {
		tb.t.Fatalf("waiting for %s: %v\npage text:\n%s", expr, err, tb.pageText())
	}
}

func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	p := filepath.Join(artifacts, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot: %s (%d bytes)", p, len(png))
}

// download clicks sel, which must start a download, and returns the downloaded file's path.
func (tb *tab) download(sel string) string {
	tb.t.Helper()
	dir := tb.t.TempDir()
	ctx, cancel := context.WithTimeout(tb.ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir, EventsEnabled: new(true),
	}); err != nil {
		tb.t.Fatal(err)
	}
	begin := chromedp.BrowserEvents(ctx, browser.DownloadWillBegin)
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		tb.t.Fatalf("click %s: %v", sel, err)
	}
	var name string
	for ev, err := range begin {
		if err != nil {
			tb.t.Fatalf("no download began: %v\npage text:\n%s", err, tb.pageText())
		}
		name = ev.SuggestedFilename
		break
	}
	for ev, err := range progress {
		if err != nil {
			tb.t.Fatalf("download of %s did not end: %v", name, err)
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			tb.t.Fatalf("download of %s canceled", name)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			break
		}
	}
	return filepath.Join(dir, name)
}

// stateLog records, in the page, each text the jobs' state lines show, in order.
const stateLog = `window.__states = [];
new MutationObserver(() => {
  for (const s of document.querySelectorAll("#jobs .card .state")) {
    const t = s.textContent;
    if (window.__states[window.__states.length - 1] !== t) window.__states.push(t);
  }
}).observe(document.getElementById("jobs"), {subtree: true, childList: true, characterData: true});
true`

// dropFiles drops two files on the page's drop zone: notes.mp4, which holds text, and
// big.mp4, 2 MiB of zeros.
const dropFiles = `(() => {
  const dt = new DataTransfer();
  dt.items.add(new File(["these are my notes, not a video\n"], "notes.mp4", {type: "video/mp4"}));
  dt.items.add(new File([new Uint8Array(2 << 20)], "big.mp4", {type: "video/mp4"}));
  const zone = document.getElementById("drop");
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
  }
  return true;
})()`

// TestWebPage is a user of the page in a real browser, on a phone-sized screen, against a
// real standalone v2md: register, log out (the token is revoked), log in with the keyboard,
// have an option refused with the server's message, convert a video with options while its
// progress shows, download the MP3, and drop two files at once: one that is not a video
// fails with its reason, one too large is refused with the server's message.
func TestWebPage(t *testing.T) {
	srv := startStandalone(t, t.TempDir(), "--part-size", "16KiB", "--max-upload-size", "1MiB")
	sample := testmedia.Good[1] // faststart.mp4, 3 s
	video := media(t, sample)
	tb := newTab(t, 390, 844)
	const email, password = "web@example.com", "correct horse battery"

	token := tb.register(srv.url(), email, password)
	if c := eval[string](tb, `document.cookie`); c != "" {
		t.Errorf("the page set cookies: %q", c)
	}
	if me := status(t, srv.url(), "/v1/me", token); me != http.StatusOK {
		t.Fatalf("GET /v1/me with the page's token: %d", me)
	}

	// Log out: the token is revoked on the server and gone from the page.
	tb.do(time.Minute, chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("auth-form")))
	if me := status(t, srv.url(), "/v1/me", token); me != http.StatusUnauthorized {
		t.Errorf("GET /v1/me with the token after logging out: %d, want 401", me)
	}
	if s := eval[bool](tb, `sessionStorage.getItem("v2m.session") === null`); !s {
		t.Error("the token is still in sessionStorage after logging out")
	}

	// Log in with the keyboard: a wrong password first, then the right one; Enter submits.
	tb.do(time.Minute,
		clearField("email"),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), "not the password\r"),
		chromedp.WaitVisible(chromedp.ID("auth-error")),
	)
	if msg := tb.text("#auth-error"); msg == "" {
		t.Error("a wrong password shows no message")
	}
	tb.do(time.Minute,
		clearField("password"),
		chromedp.SendKeys(chromedp.ID("password"), password+"\r"),
		chromedp.WaitVisible(chromedp.ID("app")),
	)

	// A bad option is refused before any part is sent, with the server's message, and the
	// field it names is marked.
	tb.do(time.Minute,
		chromedp.SendKeys(chromedp.ID("opt-start"), "soon"),
		chromedp.SetUploadFiles(chromedp.ID("files"), []string{video}),
		chromedp.WaitVisible(chromedp.ID("options-error")),
	)
	msg := tb.text("#options-error")
	if !strings.HasPrefix(msg, `option "start"`) {
		t.Errorf("options error %q does not name the option start", msg)
	}
	if inv := eval[string](tb, `document.getElementById("opt-start").getAttribute("aria-invalid")`); inv != "true" {
		t.Errorf("#opt-start aria-invalid = %q", inv)
	}
	if card := tb.text(`#jobs .card[data-state="refused"] .error`); card != msg {
		t.Errorf("the card says %q, the form %q", card, msg)
	}
	tb.do(time.Minute,
		chromedp.Click(chromedp.CSS(`#jobs .card[data-state="refused"] .actions button`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#jobs .card`)),
		clearField("opt-start"),
	)

	// Convert with options; watch the states go by.
	tb.do(time.Minute,
		chromedp.SetValue(chromedp.ID("opt-bitrate"), "128k"),
		chromedp.Click(chromedp.ID("opt-mono")),
	)
	if ok := eval[bool](tb, stateLog); !ok {
		t.Fatal("state log not installed")
	}
	tb.do(time.Minute, chromedp.SetUploadFiles(chromedp.ID("files"), []string{video}))
	tb.do(2*time.Minute, chromedp.WaitVisible(chromedp.CSS(`#jobs .card[data-state="done"] button.download`)))
	states := eval[[]string](tb, `window.__states`)
	t.Logf("states shown: %q", states)
	if len(states) == 0 || states[len(states)-1] != "Done" {
		t.Fatalf("states %q do not end with Done", states)
	}
	var uploading, waiting bool
	for _, s := range states {
		if n, ok := percent(s, "Uploading"); ok && n > 0 && n < 100 {
			uploading = true
		}
		if s == "Queued" || strings.HasPrefix(s, "Converting") {
			waiting = true
		}
	}
	if !uploading || !waiting {
		t.Errorf("states %q: want an upload percentage between 0 and 100 and a queued or converting state before Done", states)
	}
	if meta := tb.text(`#jobs .card[data-state="done"] .meta`); !strings.Contains(meta, "128kbit/s") || !strings.Contains(meta, "mono") {
		t.Errorf("the job's card shows %q, not its options", meta)
	}

	mp3 := tb.download(`#jobs .card[data-state="done"] button.download`)
	if filepath.Base(mp3) != "faststart.mp3" {
		t.Errorf("downloaded %s, want faststart.mp3", filepath.Base(mp3))
	}
	checkMP3(t, mp3, sample.AudioDuration)
	if ch, rate := audioStream(t, mp3); ch != 1 || rate != 128000 {
		t.Errorf("the MP3 has %d channels at %d bit/s, want 1 at 128000", ch, rate)
	}

	// Two files dropped at once on the drop zone (the browser's drag and drop events, with
	// files made in the page): a text file named .mp4 fails its job, with the reason, and
	// a file over the server's limit is refused with the server's 413 message.
	eval[bool](tb, dropFiles)
	tb.do(2*time.Minute,
		chromedp.WaitVisible(chromedp.CSS(`#jobs .card[data-state="failed"] .error`)),
		chromedp.WaitVisible(chromedp.CSS(`#jobs .card[data-state="refused"] .error`)),
	)
	if reason := tb.text(`#jobs .card[data-state="failed"] .error`); !strings.Contains(reason, "not a video") {
		t.Errorf("the failed job shows %q", reason)
	}
	if m := tb.text(`#jobs .card[data-state="refused"] .error`); !strings.Contains(m, "the limit is 1048576") {
		t.Errorf("the refused upload shows %q", m)
	}

	// Delete the failed job: the first click asks, the second deletes it on the server, and
	// its card goes.
	failedID := eval[string](tb, `document.querySelector('#jobs .card[data-state="failed"]').dataset.jobId`)
	del := `#jobs .card[data-state="failed"] button.delete`
	tb.do(time.Minute, chromedp.Click(chromedp.CSS(del)))
	if armed := tb.text(del); armed != "Click again to delete" {
		t.Errorf("after one click Delete says %q", armed)
	}
	if code := status(t, srv.url(), "/v1/jobs/"+failedID, pageToken(tb)); code != http.StatusOK {
		t.Fatalf("one click deleted the job: GET answers %d", code)
	}
	tb.do(time.Minute, chromedp.Click(chromedp.CSS(del)), chromedp.WaitNotPresent(chromedp.CSS(`#jobs .card[data-state="failed"]`)))
	if code := status(t, srv.url(), "/v1/jobs/"+failedID, pageToken(tb)); code != http.StatusNotFound {
		t.Errorf("the deleted job answers %d, want 404", code)
	}

	// Every field has a label, every button a name, and progress has a live region.
	if bare := eval[[]string](tb, `[...document.querySelectorAll("input, select")]
		.filter((e) => e.labels.length === 0 && !e.getAttribute("aria-label")).map((e) => e.id)`); len(bare) > 0 {
		t.Errorf("fields without a label: %q", bare)
	}
	if bare := eval[int](tb, `[...document.querySelectorAll("button")].filter((b) => !b.textContent.trim() && !b.getAttribute("aria-label")).length`); bare > 0 {
		t.Errorf("%d buttons without a name", bare)
	}
	if live := eval[string](tb, `document.getElementById("status").getAttribute("aria-live")`); live != "polite" {
		t.Errorf("#status aria-live = %q", live)
	}
	if fits := eval[bool](tb, `document.documentElement.scrollWidth <= window.innerWidth`); !fits {
		t.Error("the page is wider than a phone's screen")
	}
	if v := eval[[]string](tb, `window.__csp`); len(v) > 0 {
		t.Errorf("requests refused by the Content-Security-Policy: %q", v)
	}
	tb.screenshot("phone.png")
	tb.do(time.Minute, chromedp.EmulateViewport(1100, 900))
	tb.screenshot("desktop.png")
}

// pageToken returns the token the page keeps.
func pageToken(tb *tab) string {
	return eval[string](tb, `JSON.parse(sessionStorage.getItem("v2m.session")).token`)
}

// register opens the page, creates an account with it, and returns the token it keeps.
func (tb *tab) register(base, email, password string) string {
	tb.t.Helper()
	tb.do(time.Minute, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("auth-form")))
	tb.do(time.Minute,
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("register")),
		chromedp.WaitVisible(chromedp.ID("app")),
	)
	if got := tb.text("#whoami"); got != email {
		tb.t.Fatalf("logged in as %q, want %q", got, email)
	}
	return eval[string](tb, `JSON.parse(sessionStorage.getItem("v2m.session")).token`)
}

// TestWebResume: an upload that was interrupted after some of its parts resumes when the same
// file is added again: the page finds the upload it remembered, sends only the missing parts
// and completes it; no second upload is started.
func TestWebResume(t *testing.T) {
	srv := startStandalone(t, t.TempDir(), "--part-size", "16KiB")
	sample := testmedia.Good[1]
	video := media(t, sample)
	fi, err := os.Stat(video)
	if err != nil {
		t.Fatal(err)
	}
	tb := newTab(t, 1000, 900)
	token := tb.register(srv.url(), "resume@example.com", "correct horse battery")

	// The upload as an interrupted page leaves it: started, two parts sent, its id remembered.
	body, _ := json.Marshal(map[string]any{"filename": filepath.Base(video), "size": fi.Size()})
	var up struct {
		ID       string `json:"id"`
		PartSize int64  `json:"part_size"`
		Parts    int    `json:"parts"`
	}
	apiCall(t, "POST", srv.url()+"/v1/uploads", token, body, http.StatusCreated, &up)
	if up.Parts < 4 {
		t.Fatalf("%s has %d parts of %d bytes; the test wants 4 or more", video, up.Parts, up.PartSize)
	}
	data, err := os.ReadFile(video)
	if err != nil {
		t.Fatal(err)
	}
	for n := range 2 {
		part := data[int64(n)*up.PartSize : int64(n+1)*up.PartSize]
		apiCall(t, "PUT", fmt.Sprintf("%s/v1/uploads/%s/parts/%d", srv.url(), up.ID, n), token, part, http.StatusNoContent, nil)
	}
	key, _ := json.Marshal([]any{filepath.Base(video), fi.Size(), fi.ModTime().UnixMilli(), "{}"})
	eval[bool](tb, fmt.Sprintf(`localStorage.setItem(%q, JSON.stringify({id: %q, at: Date.now()})), true`,
		"v2m.upload:"+string(key), up.ID))

	if ok := eval[bool](tb, stateLog); !ok {
		t.Fatal("state log not installed")
	}
	tb.do(time.Minute, chromedp.SetUploadFiles(chromedp.ID("files"), []string{video}))
	tb.do(2*time.Minute, chromedp.WaitVisible(chromedp.CSS(`#jobs .card[data-state="done"] button.download`)))
	logs := srv.out.String()
	// Every part was sent once: two by the test, the others by the page.
	if puts := strings.Count(logs, "route=/v1/uploads/:id/parts/:n"); puts != up.Parts {
		t.Errorf("%d parts were sent for an upload of %d parts: the page sent %d, not the %d missing ones",
			puts, up.Parts, puts-2, up.Parts-2)
	}
	if starts := len(regexp.MustCompile(`method=POST route=/v1/uploads\s`).FindAllString(logs, -1)); starts != 1 {
		t.Errorf("%d uploads were started, want 1 (the interrupted one)", starts)
	}
	if states := eval[[]string](tb, `window.__states`); !slices.Contains(states, "Resuming 0%") {
		t.Errorf("states %q: the page did not resume", states)
	}
	if left := eval[int](tb, `Object.keys(localStorage).filter((k) => k.startsWith("v2m.upload:")).length`); left != 0 {
		t.Errorf("%d uploads still remembered after completing", left)
	}
	mp3 := tb.download(`#jobs .card[data-state="done"] button.download`)
	checkMP3(t, mp3, sample.AudioDuration)
}

// apiCall sends an API request, fails unless it is answered want, and decodes the answer
// into out (when not nil).
func apiCall(t *testing.T, method, url, token string, body []byte, want int, out any) {
	t.Helper()
	code, b, _ := send(t, method, url, token, func(r *http.Request) {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	})
	if code != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, code, b, want)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(b), out); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
}

// clearField empties the field with the id, as selecting its text and deleting it would.
func clearField(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%q).value = ""`, id))
}

func percent(s, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(s, prefix+" ")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(rest, "%"))
	return n, err == nil
}

// audioStream probes the channels and bitrate of a file's first audio stream.
func audioStream(t *testing.T, path string) (channels, bitRate int) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:0",
		"-show_entries", "stream=channels,bit_rate", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p struct {
		Streams []struct {
			Channels int    `json:"channels"`
			BitRate  string `json:"bit_rate"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &p); err != nil || len(p.Streams) == 0 {
		t.Fatalf("ffprobe %s: %v %s", path, err, out)
	}
	rate, _ := strconv.Atoi(p.Streams[0].BitRate)
	return p.Streams[0].Channels, rate
}

// sseServer is the page and a stand-in for the API's event stream: it checks the token on
// every request and streams the events the test gives it.
type sseServer struct {
	t      *testing.T
	site   *web.Site
	events chan string // raw pieces of the stream, each written and flushed on its own
	conns  chan string // the Last-Event-ID of each connection to /v1/events
	files  chan string // the fids downloaded
	quit   chan struct{}
}

const sseToken = "test-token"

func (s *sseServer) authorized(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") != "Bearer "+sseToken {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":"unauthorized","message":"no token"}}`)
		return false
	}
	return true
}

func (s *sseServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/assets/"):
		if !s.site.Serve(w, r, r.URL.Path) {
			http.NotFound(w, r)
		}
	case r.URL.Path == "/v1/me":
		if s.authorized(w, r) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"email":"sse@example.com","issuer":"v2m","expires_at":"2099-01-01T00:00:00Z"}`)
		}
	case r.URL.Path == "/v1/jobs":
		if s.authorized(w, r) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jobs":[%s]}`, sseJobConverting)
		}
	case r.URL.Path == "/v1/events":
		if !s.authorized(w, r) {
			return
		}
		select {
		case s.conns <- r.Header.Get("Last-Event-ID"):
		case <-s.quit:
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		rc.Flush()
		for {
			select {
			case piece, ok := <-s.events:
				if !ok || piece == "" {
					return // the stream ends; the page reconnects
				}
				fmt.Fprint(w, piece)
				rc.Flush()
			case <-r.Context().Done():
				return
			case <-s.quit:
				return
			}
		}
	case r.URL.Path == "/v1/uploads":
		// Network trouble: the connection drops without an answer.
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	case strings.HasPrefix(r.URL.Path, "/v1/files/"):
		if !s.authorized(w, r) {
			return
		}
		fid := strings.TrimPrefix(r.URL.Path, "/v1/files/")
		select {
		case s.files <- fid:
		case <-s.quit:
			return
		}
		w.Header().Set("Content-Type", "audio/mpeg")
		w.Header().Set("Content-Disposition", `attachment; filename="01 - Opening.mp3"`)
		fmt.Fprint(w, "ID3 the bytes of "+fid)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"not_found","message":"no route"}}`)
	}
}

const (
	sseJobConverting = `{"id":"j1","state":"converting","progress":10,"error":"","filename":"concert.mkv","size":1000,` +
		`"mp3_fid":"","options":{"split_chapters":true},"created_at":"2026-12-02T02:00:00Z",` +
		`"updated_at":"2026-12-02T02:00:01Z","finished_at":null}`
	sseJobDone = `{"id":"j1","state":"done","progress":100,"error":"","filename":"concert.mkv","size":1000,` +
		`"mp3_fid":"f1","options":{"split_chapters":true},` +
		`"files":[{"fid":"f1-01","title":"Opening","start":0,"end":90.5,"size":600},{"fid":"f1-02","title":"Encore","start":90.5,"end":200,"size":400}],` +
		`"created_at":"2026-12-02T02:00:00Z","updated_at":"2026-12-02T02:00:09Z","finished_at":"2026-12-02T02:00:09Z"}`
)

// TestWebLiveEvents drives the page's reading of the event stream (GET /v1/events, read with
// fetch so that it carries the token): keep-alive comments, events written in pieces and
// with CRLFs, progress then state events, a split job's downloads, a reconnection that
// names the last event id it saw; and an upload whose connection drops.
func TestWebLiveEvents(t *testing.T) {
	site, err := web.New()
	if err != nil {
		t.Fatal(err)
	}
	s := &sseServer{t: t, site: site, events: make(chan string), conns: make(chan string, 4),
		files: make(chan string, 4), quit: make(chan struct{})}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	t.Cleanup(func() { close(s.quit) }) // before hs.Close: the streams end first
	tb := newTab(t, 1000, 900)

	session, _ := json.Marshal(map[string]string{"token": sseToken, "email": "sse@example.com"})
	tb.do(time.Minute, chromedp.Navigate(hs.URL+"/"), chromedp.WaitVisible(chromedp.ID("auth-form")))
	eval[bool](tb, fmt.Sprintf(`sessionStorage.setItem("v2m.session", %q), true`, session))
	tb.do(time.Minute, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#jobs .card[data-state="converting"]`)))

	wait := func(ch chan string, what string) string {
		t.Helper()
		select {
		case v := <-ch:
			return v
		case <-time.After(30 * time.Second):
			t.Fatalf("timed out waiting for %s\npage text:\n%s", what, tb.pageText())
			return ""
		}
	}
	stream := func(pieces ...string) {
		t.Helper()
		for _, p := range pieces {
			select {
			case s.events <- p:
			case <-time.After(30 * time.Second):
				t.Fatalf("the page does not read the stream\npage text:\n%s", tb.pageText())
			}
		}
	}
	if id := wait(s.conns, "the page to open the stream"); id != "" {
		t.Errorf("first connection sent Last-Event-ID %q", id)
	}
	tb.waitFor(10*time.Second, `document.getElementById("live").textContent.startsWith("Live")`)
	stream("retry: 50\n: keep-alive\n\n",
		// One event of two data lines, written in three pieces (which the browser may read
		// as fewer chunks; TestWebScripts feeds the parser exact ones).
		"event: progress\r\nid: 1\r\ndata: {\"id\"", ":\"j1\",\r", "\ndata: \"progress\":40}\r\n\r\n")
	tb.waitFor(10*time.Second, `document.querySelector("#jobs .card .state").textContent === "Converting 40%"`)
	stream(": keep-alive\n\nevent: state\nid: 2\ndata: " + sseJobDone + "\n\n")
	tb.do(30*time.Second, chromedp.WaitVisible(chromedp.CSS(`#jobs .card[data-state="done"] .actions button`)))
	labels := eval[[]string](tb, `[...document.querySelectorAll("#jobs .card .actions button")].map((b) => b.textContent)`)
	if want := []string{"01 - Opening.mp3", "02 - Encore.mp3", "All as a zip", "Delete"}; strings.Join(labels, "|") != strings.Join(want, "|") {
		t.Errorf("download buttons %q, want %q", labels, want)
	}

	// The server ends the stream: the page reconnects after the retry it was given, naming
	// the last event it saw.
	stream("")
	if id := wait(s.conns, "the page to reconnect"); id != "2" {
		t.Errorf("the reconnection sent Last-Event-ID %q, want 2", id)
	}

	path := tb.download(`#jobs .card .actions button`)
	if fid := wait(s.files, "the download"); fid != "f1-01" {
		t.Errorf("downloaded fid %q, want f1-01", fid)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "ID3 the bytes of f1-01" || filepath.Base(path) != "01 - Opening.mp3" {
		t.Errorf("downloaded %s: %q, %v", filepath.Base(path), b, err)
	}

	// Network trouble: the upload fails with a message that says so, and offers to try again.
	dir := t.TempDir()
	f := filepath.Join(dir, "talk.mp4")
	if err := os.WriteFile(f, []byte("a video"), 0o644); err != nil {
		t.Fatal(err)
	}
	tb.do(time.Minute,
		chromedp.SetUploadFiles(chromedp.ID("files"), []string{f}),
		chromedp.WaitVisible(chromedp.CSS(`#jobs .card[data-state="refused"] .error`)),
	)
	if m := tb.text(`#jobs .card[data-state="refused"] .error`); !strings.Contains(m, "Cannot reach the server") {
		t.Errorf("the upload cut off by the network shows %q", m)
	}
	if b := tb.text(`#jobs .card[data-state="refused"] .actions button`); b != "Try again" {
		t.Errorf("the upload cut off by the network offers %q, not Try again", b)
	}
	if v := eval[[]string](tb, `window.__csp`); len(v) > 0 {
		t.Errorf("requests refused by the Content-Security-Policy: %q", v)
	}
}

// sitePage starts a server of the page alone and opens it in a new tab.
func sitePage(t *testing.T) *tab {
	t.Helper()
	site, err := web.New()
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !site.Serve(w, r, r.URL.Path) {
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(hs.Close)
	tb := newTab(t, 800, 600)
	tb.do(time.Minute, chromedp.Navigate(hs.URL+"/"), chromedp.WaitVisible(chromedp.ID("auth-form")))
	return tb
}

// module runs an async JavaScript function body in the page, with the page's module name
// imported as m and args as the JSON value args, and decodes what it returns into out.
func module(tb *tab, name, body string, args, out any) {
	tb.t.Helper()
	a, err := json.Marshal(args)
	if err != nil {
		tb.t.Fatal(err)
	}
	expr := fmt.Sprintf(`(async () => { const m = await import("/assets/%s"); const args = %s; %s })()`, name, a, body)
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("%s: %v", name, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		tb.t.Fatalf("%s: %v (%s)", name, err, raw)
	}
}

type sseEvent struct {
	Type string `json:"type"`
	Data string `json:"data"`
	ID   string `json:"id"`
}

// TestWebScripts checks the page's own parsing and naming code, in the browser, against
// exact inputs: the event stream parser fed chunks cut at awkward places, the CRC-32C of
// parts against Go's, and the MP3 and download names against the server's.
func TestWebScripts(t *testing.T) {
	tb := sitePage(t)

	for _, tc := range []struct {
		name   string
		chunks []string
		want   []sseEvent
		lastID string
		retry  int
	}{
		{"CRLF cut between CR and LF", []string{"event: progress\r\nid: 1\r\ndata: {\"id\"", ":\"j1\",\r", "\ndata: \"progress\":40}\r\n\r\n"},
			[]sseEvent{{"progress", "{\"id\":\"j1\",\n\"progress\":40}", "1"}}, "1", 0},
		{"lone CR ends lines", []string{"data: a\rdata: b\r\r"}, []sseEvent{{"message", "a\nb", ""}}, "", 0},
		{"comments, BOM, retry, no space after the colon", []string{"\ufeff: keep-alive\nretry: 250\n\nevent:state\ndata:x\n\n"},
			[]sseEvent{{"state", "x", ""}}, "", 250},
		{"a field alone, an unknown field, a bad retry", []string{"data\nfoo: bar\nretry: soon\n\n"}, []sseEvent{{"message", "", ""}}, "", 0},
		{"no data, no event; the id stays", []string{"event: state\nid: 7\n\n", ": ping\n\n"}, nil, "7", 0},
		{"an id with NUL is ignored", []string{"id: 3\ndata: a\n\nid: 4\u0000\ndata: b\n\n"},
			[]sseEvent{{"message", "a", "3"}, {"message", "b", "3"}}, "3", 0},
		{"an unfinished event is dropped", []string{"data: whole\n\ndata: cut"}, []sseEvent{{"message", "whole", ""}}, "", 0},
		{"one byte at a time", strings.Split("event: state\r\ndata: {}\r\n\r\n", ""), []sseEvent{{"state", "{}", ""}}, "", 0},
	} {
		var got struct {
			Events []sseEvent `json:"events"`
			LastID string     `json:"lastId"`
			Retry  int        `json:"retry"`
		}
		module(tb, "events.js", `const out = [];
			const p = new m.SSEParser((e) => out.push(e));
			for (const c of args) p.feed(c);
			p.end();
			return {events: out, lastId: p.lastId, retry: p.retry};`, tc.chunks, &got)
		if !slices.Equal(got.Events, tc.want) || got.LastID != tc.lastID || got.Retry != tc.retry {
			t.Errorf("%s: events %+v, last id %q, retry %d; want %+v, %q, %d", tc.name, got.Events, got.LastID, got.Retry,
				tc.want, tc.lastID, tc.retry)
		}
	}

	// CRC-32C of parts, as the server checks X-Part-CRC32C.
	parts := []string{"", "a", "123456789", strings.Repeat("v2m part ", 5000), "\x00\xff\x80 bytes"}
	var sums []string
	module(tb, "upload.js", `return args.map((s) => m.crc32c(Uint8Array.from(s, (c) => c.charCodeAt(0))));`, parts, &sums)
	for i, p := range parts {
		b := make([]byte, len([]rune(p)))
		for j, r := range []rune(p) {
			b[j] = byte(r)
		}
		if want := fmt.Sprintf("%08x", crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))); sums[i] != want {
			t.Errorf("crc32c(%q) = %s, want %s", p, sums[i], want)
		}
	}

	// Names: the page's MP3 name of a video is the server's, and it reads the name the
	// server gives in Content-Disposition back.
	names := []string{"talk.mp4", "a.b.mp4", "noext", "trailingdot.", "x.MP4", ".hidden", ".hidden.mkv", "..mp4",
		"vidéo.mp4", "日本語の動画.mkv", "with space.mov", `C:\Users\ann\talk.mp4`, "dir/", "", "..", `quote"d.mp4`}
	var got struct {
		MP3  []string `json:"mp3"`
		Read []string `json:"read"`
	}
	var headers []string
	for _, n := range names {
		headers = append(headers, mime.FormatMediaType("attachment", map[string]string{"filename": wire.MP3Name(n)}))
	}
	module(tb, "api.js", `return {mp3: args.names.map(m.mp3Name), read: args.headers.map(m.filenameOf)};`,
		map[string]any{"names": names, "headers": headers}, &got)
	for i, n := range names {
		if want := wire.MP3Name(n); got.MP3[i] != want {
			t.Errorf("mp3Name(%q) = %q, want %q", n, got.MP3[i], want)
		}
		if want := wire.MP3Name(n); got.Read[i] != want {
			t.Errorf("filenameOf(%s) = %q, want %q", headers[i], got.Read[i], want)
		}
	}
}
