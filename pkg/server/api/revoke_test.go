package api

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/v2m/v2m/pkg/server/auth"
	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/server/token"
)

// revoking wires DELETE /v1/tokens/current, the verifier's revocation check and
// GET /v1/revocations to a revocation store in SQLite, as standalone and auth do.
func revoking(t *testing.T) func(*Config) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "revocations.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return func(c *Config) {
		svc := c.Accounts.(*auth.Service)
		svc.Revocations = db.Revocations()
		c.Revoker, c.Revocations = svc, db.Revocations()
		c.Verifier.(*token.Verifier).Revocations = db.Revocations()
	}
}

func TestRevokedTokenRefusedEverywhere(t *testing.T) {
	e := newEnv(t, revoking(t))
	old := e.user("ann@example.com")
	other := e.login("ann@example.com")
	job := e.tutorialUpload(old, "v.mp4", []byte("video"))
	if job.code != 200 {
		t.Fatalf("upload: %d %s", job.code, job.body)
	}
	var j struct{ ID string }
	job.json(&j)
	var me struct{ JTI string }
	if r := e.do("POST", "/validate", old, nil); r.code != 200 || r.json(&me) != nil || me.JTI == "" {
		t.Fatalf("validate: %d %s", r.code, r.body)
	}

	if r := e.do("DELETE", "/v1/tokens/current", "", nil); r.code != 401 {
		t.Fatalf("DELETE without a token: %d", r.code)
	}
	if r := e.do("DELETE", "/v1/tokens/current", old, nil); r.code != 204 || len(r.body) != 0 {
		t.Fatalf("DELETE /v1/tokens/current: %d %s", r.code, r.body)
	}
	for _, rt := range []struct{ method, path string }{
		{"GET", "/v1/me"}, {"GET", "/v1/jobs"}, {"GET", "/v1/jobs/" + j.ID}, {"POST", "/v1/uploads"},
		{"GET", "/v1/uploads/" + j.ID}, {"GET", "/v1/files/" + j.ID}, {"DELETE", "/v1/tokens/current"},
		{"POST", "/validate"}, {"POST", "/upload"}, {"GET", "/download?fid=" + j.ID},
	} {
		r := e.do(rt.method, rt.path, old, nil)
		if r.code != 401 || r.errCode() != "unauthorized" || !strings.Contains(string(r.body), "revoked") {
			t.Errorf("%s %s with the revoked token: %d %s", rt.method, rt.path, r.code, r.body)
		}
	}
	// The user's other token, and the user's account, are not affected.
	if r := e.do("GET", "/v1/jobs/"+j.ID, other, nil); r.code != 200 {
		t.Fatalf("the other token: %d %s", r.code, r.body)
	}
	e.login("ann@example.com")
	// The auth service lists the revocation for gateways, with its expiry.
	var list struct {
		Revocations []struct {
			JTI string `json:"jti"`
			Exp string `json:"exp"`
		}
	}
	r := e.do("GET", "/v1/revocations", "", nil)
	if r.code != 200 || r.json(&list) != nil || len(list.Revocations) != 1 || list.Revocations[0].JTI != me.JTI || list.Revocations[0].Exp == "" {
		t.Fatalf("GET /v1/revocations: %d %s, want the jti %s", r.code, r.body, me.JTI)
	}
}

func TestNoRevocationRoutesWithoutStore(t *testing.T) {
	e := newEnv(t)
	tok := e.user("ann@example.com")
	if r := e.do("DELETE", "/v1/tokens/current", tok, nil); r.code != 404 && r.code != 405 {
		t.Fatalf("DELETE without a revoker: %d", r.code)
	}
	if r := e.do("GET", "/v1/revocations", "", nil); r.code != 404 {
		t.Fatalf("GET /v1/revocations without a store: %d", r.code)
	}
}
