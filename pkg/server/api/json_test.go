package api

import (
	"strings"
	"testing"
)

// TestHostileJSONBodies sends every JSON route bodies of the wrong types, nested garbage, huge
// or deeply nested values, trailing data and non-JSON: each answers 4xx with the API's error,
// never 500, and no message names a Go type or echoes a Go error.
func TestHostileJSONBodies(t *testing.T) {
	e := newEnv(t)
	tok := e.user("ann@example.com")
	routes := []struct{ path, tok, valid string }{
		{"/v1/users", "", `{"email":"new@example.com","password":"password123"}`},
		{"/registration", "", `{"username":"new2@example.com","password":"password123"}`},
		{"/v1/uploads", tok, `{"filename":"a.mp4","size":10}`},
	}
	hostile := []struct {
		name, body string
		code       int
		message    string // a substring the message must have; "" for any
	}{
		{"empty", ``, 400, "empty"},
		{"not JSON", `hello`, 400, "malformed JSON at byte 1"},
		{"binary", "\x00\x01\xff\xfe", 400, "malformed JSON at byte 1"},
		{"cut short", `{"email":"a`, 400, "ends in the middle"},
		{"array", `[1,2,3]`, 400, "must be a JSON object"},
		{"string", `"x"`, 400, "must be a JSON object"},
		{"number", `12`, 400, "must be a JSON object"},
		{"trailing data", `{"email":"t@example.com","password":"password123","filename":"a.mp4","size":1} x`, 400, "after the object"},
		{"two objects", `{} {}`, 400, "after the object"},
		{"wrong type: number for a string", `{"email":5,"username":5,"filename":5}`, 400, "must be a string"},
		{"wrong type: object for a string", `{"email":{"a":[1,{"b":null}]},"username":{},"filename":{"x":[]}}`, 400, "must be a string"},
		{"wrong type: bool for a string", `{"password":true,"filename":"a.mp4","size":1,"sha256":true}`, 400, "must be a string"},
		{"deep nesting", strings.Repeat("[", 20000) + strings.Repeat("]", 20000), 400, ""},
		{"deep nesting in a field", `{"email":` + strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat("}", 20000) + `}`, 400, ""},
		{"huge", `{"email":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "larger than"},
		{"huge number", `{"size":1` + strings.Repeat("0", 400) + `,"filename":"a.mp4","email":"x","password":"y"}`, 400, ""},
	}
	goish := []string{"Go ", "int64", "json:", "struct", "unmarshal", "RawMessage", "reflect", "main.", "api.", "strconv", "parsing", "EOF"}
	for _, rt := range routes {
		for _, h := range hostile {
			r := e.do("POST", rt.path, rt.tok, strings.NewReader(h.body), "Content-Type", "application/json")
			var eb struct {
				Error struct{ Code, Message string }
			}
			r.json(&eb)
			if r.code != h.code || eb.Error.Message == "" {
				t.Errorf("%s, %s: %d %.200s, want %d", rt.path, h.name, r.code, r.body, h.code)
				continue
			}
			if h.message != "" && !strings.Contains(eb.Error.Message, h.message) {
				t.Errorf("%s, %s: message %q lacks %q", rt.path, h.name, eb.Error.Message, h.message)
			}
			for _, g := range goish {
				if strings.Contains(eb.Error.Message, g) {
					t.Errorf("%s, %s: message %q mentions %q", rt.path, h.name, eb.Error.Message, g)
				}
			}
		}
		if r := e.do("POST", rt.path, rt.tok, strings.NewReader(rt.valid)); r.code != 201 {
			t.Errorf("%s, a valid body after the hostile ones: %d %s", rt.path, r.code, r.body)
		}
	}
	// The field is named as the client wrote it.
	r := e.do("POST", "/v1/users", "", strings.NewReader(`{"email":"a@example.com","password":12345678}`))
	if r.code != 400 || !strings.Contains(string(r.body), `field \"password\" must be a string`) {
		t.Errorf("wrong type: %d %s", r.code, r.body)
	}
	r = e.do("POST", "/v1/uploads", tok, strings.NewReader(`{"filename":"a.mp4","size":"12"}`))
	if r.code != 400 || !strings.Contains(string(r.body), `field \"size\" must be a whole number of bytes`) {
		t.Errorf("size as a string: %d %s", r.code, r.body)
	}
	r = e.do("POST", "/v1/uploads", tok, strings.NewReader("{\"filename\":\"a.mp4\",\n\"size\":10,,}"))
	if r.code != 400 || !strings.Contains(string(r.body), "malformed JSON at byte 32") {
		t.Errorf("syntax error: %d %s", r.code, r.body)
	}
	// Trailing data refused means nothing was done: the user of the trailing-data body was not created.
	if r := e.do("POST", "/v1/users", "", strings.NewReader(`{"email":"t@example.com","password":"password123"}`)); r.code != 201 {
		t.Errorf("the trailing-data body registered its user: %d %s", r.code, r.body)
	}
	e.noErrorLogs()
}
