package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// jobOptionsJSON returns the raw "options" of a job answer; nil when the key is absent.
func jobOptionsJSON(t *testing.T, body []byte) json.RawMessage {
	t.Helper()
	var j map[string]json.RawMessage
	if err := json.Unmarshal(body, &j); err != nil {
		t.Fatalf("job answer %s: %v", body, err)
	}
	return j["options"]
}

// startAndComplete uploads a small video with the body's options and completes it: the job
// answer.
func (e *env) startAndComplete(tok string, body map[string]any) resp {
	e.t.Helper()
	body["filename"], body["size"] = "talk.mp4", 4
	var up uploadResp
	if r := e.do("POST", "/v1/uploads", tok, jsonBody(body)); r.code != 201 || r.json(&up) != nil {
		e.t.Fatalf("create upload %v: %d %s", body, r.code, r.body)
	}
	if r := e.do("PUT", "/v1/uploads/"+up.ID+"/parts/0", tok, strings.NewReader("abcd")); r.code != 204 {
		e.t.Fatalf("part: %d %s", r.code, r.body)
	}
	r := e.do("POST", "/v1/uploads/"+up.ID+"/complete", tok, nil)
	if r.code != 201 {
		e.t.Fatalf("complete: %d %s", r.code, r.body)
	}
	return r
}

// TestUploadOptionsReachTheJob: the options of POST /v1/uploads are parsed, kept with the
// upload, given to the job at complete and shown, as the API normalises them, by complete,
// GET /v1/jobs/{id} and GET /v1/jobs. Jobs of the defaults, and the tutorial's, show none.
func TestUploadOptionsReachTheJob(t *testing.T) {
	e := newEnv(t)
	tok := e.user("ann@example.com")
	r := e.startAndComplete(tok, map[string]any{"options": map[string]any{
		"bitrate": "192K", "start": "01:30", "end": "2m0.5s", "normalize": true, "language": "ENG", "cover": false, "mono": true,
	}})
	const want = `{"bitrate":"192k","start":"1m30s","end":"2m0.5s","normalize":true,"loudness":-16,"language":"eng","mono":true,"cover":false}`
	if got := jobOptionsJSON(t, r.body); string(got) != want {
		t.Fatalf("complete shows options %s, want %s", got, want)
	}
	var j jobResp
	r.json(&j)
	if r := e.do("GET", "/v1/jobs/"+j.ID, tok, nil); r.code != 200 || string(jobOptionsJSON(t, r.body)) != want {
		t.Fatalf("GET job: %d %s; want options %s", r.code, r.body, want)
	}
	stored, err := e.db.Jobs().Job(t.Context(), j.ID)
	wantOpts := server.JobOptions{Bitrate: 192, Start: 90 * time.Second, End: 120500 * time.Millisecond, Loudness: -16,
		Language: "eng", Mono: true, NoCover: true}
	if err != nil || !stored.Options.Equal(wantOpts) {
		t.Fatalf("stored job %+v, %v; want options %+v", stored, err, wantOpts)
	}

	// quality 0 is not the default, and shows; a loudness shows with normalize.
	r = e.startAndComplete(tok, map[string]any{"options": map[string]any{"quality": 0, "loudness": -23.5, "track": 0}})
	const want2 = `{"quality":0,"normalize":true,"loudness":-23.5,"track":0}`
	if got := jobOptionsJSON(t, r.body); string(got) != want2 {
		t.Fatalf("complete shows options %s, want %s", got, want2)
	}

	plain := e.startAndComplete(tok, map[string]any{})
	nullOpts := e.startAndComplete(tok, map[string]any{"options": nil})
	empty := e.startAndComplete(tok, map[string]any{"options": map[string]any{}})
	tut := e.tutorialUpload(tok, "tut.mp4", []byte("video"))
	for name, body := range map[string][]byte{"no options": plain.body, "null options": nullOpts.body, "empty options": empty.body, "tutorial": tut.body} {
		if got := jobOptionsJSON(t, body); got != nil {
			t.Errorf("%s: the job shows options %s; want none (the defaults)", name, got)
		}
	}
	r = e.do("GET", "/v1/jobs", tok, nil)
	var list struct{ Jobs []json.RawMessage }
	if r.code != 200 || r.json(&list) != nil || len(list.Jobs) != 6 {
		t.Fatalf("list: %d %s", r.code, r.body)
	}
	var shown []string
	for _, j := range list.Jobs {
		if o := jobOptionsJSON(t, j); o != nil {
			shown = append(shown, string(o))
		}
	}
	if len(shown) != 2 || shown[0] != want2 || shown[1] != want { // newest first
		t.Errorf("GET /v1/jobs shows options %v, want [%s %s]", shown, want2, want)
	}
	e.noErrorLogs()
}

// TestBadUploadOptionsRefused: an unknown key inside "options" (a typo), a bad value or a wrong
// type is 400 naming the option; nothing is stored and nothing is queued.
func TestBadUploadOptionsRefused(t *testing.T) {
	e := newEnv(t)
	tok := e.user("ann@example.com")
	for _, tc := range []struct{ options, message string }{
		{`{"qualty":3}`, `unknown option \"qualty\"; the options are quality, bitrate, start, end, normalize, loudness, track, language, mono, cover, split_chapters`},
		{`{"quality":2,"Bitrate ":"192k"}`, `unknown option \"Bitrate \"`},
		{`{"Quality":2}`, `unknown option \"Quality\"`}, // encoding/json alone would take it for quality
		{`{"quality":1,"QUALITY":2}`, `unknown option \"QUALITY\"`},
		{`{"mono":true,"splitchapters":true,"cover_art":false}`, `unknown options \"cover_art\", \"splitchapters\"; the options are`},
		{`{"quality":12}`, `option \"quality\" must be 0 (best) to 9, not 12`},
		{`{"bitrate":"100k"}`, `option \"bitrate\" must be one of 32k`},
		{`{"quality":2,"bitrate":"192k"}`, `\"bitrate\" and \"quality\" cannot be combined`},
		{`{"start":"2m","end":"1m"}`, `option \"end\" (1m0s) must come after \"start\" (2m0s)`},
		{`{"loudness":-40}`, `option \"loudness\" must be -30 to -5 LUFS, not -40`},
		{`{"track":1,"language":"eng"}`, `\"track\" and \"language\" cannot be combined`},
		{`{"language":"english"}`, `option \"language\" must be a three-letter ISO 639-2 code`},
		{`{"quality":"high"}`, `option \"quality\" must be a whole number`},
		{`{"quality":2.5}`, `option \"quality\" must be a whole number`},
		{`{"normalize":"yes"}`, `option \"normalize\" must be true or false`},
		{`{"loudness":"-16"}`, `option \"loudness\" must be a number`},
		{`"fast"`, `field \"options\" must be an object`},
		{`[1]`, `field \"options\" must be an object`},
	} {
		body := `{"filename":"a.mp4","size":4,"options":` + tc.options + `}`
		r := e.do("POST", "/v1/uploads", tok, strings.NewReader(body))
		if r.code != 400 || r.errCode() != "invalid" || !bytes.Contains(r.body, []byte(tc.message)) {
			t.Errorf("options %s: %d %s, want 400 with %s", tc.options, r.code, r.body, tc.message)
		}
	}
	if ups, err := e.db.Uploads().StaleUploads(t.Context(), time.Now().Add(time.Hour), 10); err != nil || len(ups) != 0 {
		t.Errorf("uploads stored for bad options: %d, %v", len(ups), err)
	}
	if n := e.jobCount(tok); n != 0 {
		t.Errorf("%d jobs for bad options", n)
	}
	if live, dead, err := e.q.Depth(t.Context(), server.TopicVideo); err != nil || live+dead != 0 {
		t.Errorf("queue after bad options: %d live, %d dead, %v", live, dead, err)
	}
	// Unknown keys outside "options" are still ignored, as before.
	if r := e.do("POST", "/v1/uploads", tok, strings.NewReader(`{"filename":"a.mp4","size":4,"note":"x"}`)); r.code != 201 {
		t.Errorf("an unknown top-level key: %d %s", r.code, r.body)
	}
	e.noErrorLogs()
}
