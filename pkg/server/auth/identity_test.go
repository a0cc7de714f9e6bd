package auth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

// send makes a request with a JSON body.
func send(t *testing.T, method, url, body string, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func createPAT(t *testing.T, base, tok, body string) wire.CreatedPersonalToken {
	t.Helper()
	a := send(t, "POST", base+"/v1/tokens/personal", body, bearer(tok)...)
	var out wire.CreatedPersonalToken
	if a.code != 201 || json.Unmarshal([]byte(a.body), &out) != nil || !strings.HasPrefix(out.Token, server.PersonalTokenPrefix) {
		t.Fatalf("create personal token: %d %s", a.code, a.body)
	}
	return out
}

func wantStatus(t *testing.T, what string, a answer, code int, inBody string) {
	t.Helper()
	if a.code != code || !strings.Contains(a.body, inBody) {
		t.Fatalf("%s: %d %s; want %d with %q", what, a.code, a.body, code, inBody)
	}
}

// TestPersonalTokens, at the auth service (as standalone serves them) and through a gateway:
// create, use, list, read-only, no minting with a personal token, validation, revoke.
func TestPersonalTokens(t *testing.T) {
	s := newStack(t, nil)
	gw, _ := s.gateway(50 * time.Millisecond)
	s.register(gw.URL, "ann@example.com")
	s.register(gw.URL, "bob@example.com")
	for i, base := range []string{s.auth.URL, gw.URL} {
		jwt := s.login(base, "ann@example.com")
		rw := createPAT(t, base, jwt, `{"name":"ci","ttl":"2d"}`)
		ro := createPAT(t, base, jwt, `{"name":"dashboard","read_only":true}`)
		if rw.ReadOnly || !ro.ReadOnly || rw.ExpiresAt.Sub(rw.CreatedAt) != 48*time.Hour || ro.ExpiresAt.Sub(ro.CreatedAt) != 30*24*time.Hour {
			t.Fatalf("created %+v and %+v", rw.PersonalToken, ro.PersonalToken)
		}
		a := call(t, "GET", base+"/v1/me", bearer(rw.Token)...)
		wantStatus(t, "me with a personal token", a, 200, `"email":"ann@example.com"`)
		if !strings.Contains(a.body, `"personal":true`) || strings.Contains(a.body, `"read_only"`) {
			t.Fatalf("me with a personal token: %s", a.body)
		}
		wantStatus(t, "read-only GET", call(t, "GET", base+"/v1/tokens/personal", bearer(ro.Token)...), 200, `"name":"dashboard"`)
		wantStatus(t, "read-only POST", send(t, "POST", base+"/v1/tokens/personal", `{"name":"x"}`, bearer(ro.Token)...), 403, "read-only")
		wantStatus(t, "read-only DELETE", call(t, "DELETE", base+"/v1/tokens/personal/"+rw.ID, bearer(ro.Token)...), 403, "read-only")
		wantStatus(t, "minting with a personal token", send(t, "POST", base+"/v1/tokens/personal", `{"name":"more"}`, bearer(rw.Token)...),
			403, "cannot create personal tokens")
		for _, bad := range []struct{ body, msg string }{
			{`{"name":""}`, "is required"},
			{`{"name":"` + strings.Repeat("x", 65) + `"}`, "at most 64"},
			{`{"name":"a\u0007b"}`, "control characters"},
			{`{"name":"x","ttl":"forever"}`, "must be a duration"},
			{`{"name":"x","ttl":"400d"}`, "must be from"},
			{`{"name":"x","ttl":"10s"}`, "must be from"},
			{`{"name":"x","read_only":"yes"}`, "must be true or false"},
		} {
			wantStatus(t, "create "+bad.body, send(t, "POST", base+"/v1/tokens/personal", bad.body, bearer(jwt)...), 400, bad.msg)
		}
		a = call(t, "GET", base+"/v1/tokens/personal", bearer(jwt)...)
		var list wire.PersonalTokenList
		if a.code != 200 || json.Unmarshal([]byte(a.body), &list) != nil || len(list.Tokens) != 2+i || strings.Contains(a.body, server.PersonalTokenPrefix) {
			t.Fatalf("list: %d %s", a.code, a.body)
		}
		// Someone else cannot revoke it; its owner can, and then it fails.
		bob := s.login(base, "bob@example.com")
		wantStatus(t, "bob revokes ann's token", call(t, "DELETE", base+"/v1/tokens/personal/"+rw.ID, bearer(bob)...), 404, "not found")
		wantStatus(t, "revoke", call(t, "DELETE", base+"/v1/tokens/personal/"+rw.ID, bearer(jwt)...), 204, "")
		wantStatus(t, "revoked token", call(t, "GET", base+"/v1/me", bearer(rw.Token)...), 401, "invalid token")
		wantStatus(t, "revoke again", call(t, "DELETE", base+"/v1/tokens/personal/"+rw.ID, bearer(jwt)...), 404, "not found")
		wantStatus(t, "forged token", call(t, "GET", base+"/v1/me", bearer(server.PersonalTokenPrefix+"AAAA")...), 401, "invalid token")
		// A read-only token cannot even log out.
		wantStatus(t, "logout with a read-only token", call(t, "DELETE", base+"/v1/tokens/current", bearer(ro.Token)...), 403, "read-only")
	}
	// A token revoked at auth stops working at the gateway within its cache time.
	jwt := s.login(gw.URL, "ann@example.com")
	p := createPAT(t, gw.URL, jwt, `{"name":"cached"}`)
	wantStatus(t, "fresh token at the gateway", call(t, "GET", gw.URL+"/v1/me", bearer(p.Token)...), 200, "ann@example.com")
	wantStatus(t, "revoke at auth", call(t, "DELETE", s.auth.URL+"/v1/tokens/personal/"+p.ID, bearer(jwt)...), 204, "")
	pollStatus(t, gw.URL+"/v1/me", p.Token, 401)
	// Logging out with a personal token revokes it.
	out := createPAT(t, gw.URL, jwt, `{"name":"logout"}`)
	wantStatus(t, "logout with a personal token", call(t, "DELETE", gw.URL+"/v1/tokens/current", bearer(out.Token)...), 204, "")
	wantStatus(t, "the token after logout", call(t, "GET", gw.URL+"/v1/me", bearer(out.Token)...), 401, "invalid token")
}

// TestAdminAndDisable: users get 404 on the admin routes and admins get them, at auth and
// through a gateway; a grant shows from the next login; disabling refuses logins, JWTs and
// personal tokens at once at auth and the gateway that forwarded it, and within a refresh at
// another gateway; enabling lets them in again.
func TestAdminAndDisable(t *testing.T) {
	s := newStack(t, nil)
	gw, _ := s.gateway(50 * time.Millisecond)
	other, _ := s.gateway(50 * time.Millisecond)
	s.register(gw.URL, "root@example.com")
	s.register(gw.URL, "ann@example.com")
	before := s.login(gw.URL, "root@example.com")
	for _, base := range []string{s.auth.URL, gw.URL} {
		wantStatus(t, "a user lists users", call(t, "GET", base+"/v1/admin/users", bearer(before)...), 404, "not_found")
		wantStatus(t, "a user disables", call(t, "POST", base+"/v1/admin/users/ann@example.com/disable", bearer(before)...), 404, "not_found")
	}
	if _, err := s.db.Users().SetRole(t.Context(), "root@example.com", server.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "a token from before the grant", call(t, "GET", gw.URL+"/v1/admin/users", bearer(before)...), 404, "not_found")
	admin := s.login(gw.URL, "root@example.com")
	wantStatus(t, "me of an admin", call(t, "GET", gw.URL+"/v1/me", bearer(admin)...), 200, `"role":"admin"`)
	annJWT := s.login(gw.URL, "ann@example.com")
	annPAT := createPAT(t, gw.URL, annJWT, `{"name":"ci"}`).Token
	for _, base := range []string{s.auth.URL, gw.URL} {
		a := call(t, "GET", base+"/v1/admin/users?limit=1", bearer(admin)...)
		wantStatus(t, "admin lists users", a, 200, `"email":"root@example.com","role":"admin","disabled":false`)
		wantStatus(t, "second page", call(t, "GET", base+"/v1/admin/users?after=1", bearer(admin)...), 200, `"email":"ann@example.com","role":"user"`)
		wantStatus(t, "bad limit", call(t, "GET", base+"/v1/admin/users?limit=0", bearer(admin)...), 400, "must be a whole number from 1")
		wantStatus(t, "unknown user", call(t, "POST", base+"/v1/admin/users/nobody@example.com/disable", bearer(admin)...), 404, "nobody@example.com")
		wantStatus(t, "bad email", call(t, "POST", base+"/v1/admin/users/not-an-email/disable", bearer(admin)...), 400, "invalid email")
		wantStatus(t, "disable oneself", call(t, "POST", base+"/v1/admin/users/root@example.com/disable", bearer(admin)...), 400, "your own account")
	}
	for _, tok := range []string{annJWT, annPAT} {
		wantStatus(t, "other gateway before the disable", call(t, "GET", other.URL+"/v1/me", bearer(tok)...), 200, "ann@example.com")
	}
	wantStatus(t, "disable", call(t, "POST", gw.URL+"/v1/admin/users/Ann@Example.com/disable", bearer(admin)...), 200, `"disabled":true`)
	for _, tok := range []string{annJWT, annPAT} {
		for _, base := range []string{s.auth.URL, gw.URL} {
			wantStatus(t, "a disabled user's token", call(t, "GET", base+"/v1/me", bearer(tok)...), 403, "disabled")
		}
		pollStatus(t, other.URL+"/v1/me", tok, 403)
	}
	wantStatus(t, "a disabled user's login", call(t, "POST", gw.URL+"/v1/tokens", basic("ann@example.com", "password123")...), 403,
		"the account ann@example.com is disabled")
	wantStatus(t, "a wrong password of a disabled user", call(t, "POST", gw.URL+"/v1/tokens", basic("ann@example.com", "wrong-password")...), 401, "")
	wantStatus(t, "enable", call(t, "POST", other.URL+"/v1/admin/users/ann@example.com/enable", bearer(admin)...), 200, `"disabled":false`)
	pollStatus(t, gw.URL+"/v1/me", annJWT, 200)
	wantStatus(t, "login again", call(t, "POST", gw.URL+"/v1/tokens", basic("ann@example.com", "password123")...), 200, "token")
	// Revoking the role takes it away from tokens that carry it, at every gateway.
	if _, err := s.db.Users().SetRole(t.Context(), "root@example.com", server.RoleUser); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "auth after the role is revoked", call(t, "GET", s.auth.URL+"/v1/admin/users", bearer(admin)...), 404, "not_found")
	pollStatus(t, other.URL+"/v1/admin/users", admin, 404)
}
