package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/pkg/server"
)

// secretMount writes files the way the kubelet updates a Secret volume: a new directory, then
// an atomic swap of the ..data symlink that the names point through.
func secretMount(t *testing.T, dir string, gen int, files map[string]string) {
	t.Helper()
	ts := filepath.Join(dir, "..gen"+strings.Repeat("x", gen))
	if err := os.Mkdir(ts, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, src := range files {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ts, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(filepath.Join(dir, name)); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// kidOf returns the kid in a JWT's header.
func kidOf(t *testing.T, tok string) string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// TestAuthReloadsRotatedKey: auth, its keys mounted like a Kubernetes Secret, picks up a
// rotation by itself: new tokens are signed with the new key, the JWKS lists both, and a token
// signed before the rotation still verifies.
func TestAuthReloadsRotatedKey(t *testing.T) {
	dsn := testenv.Get(t, testenv.MySQLDSN)
	_, v2md := binaries(t)
	dir := t.TempDir()
	keys := map[string]string{}
	for _, k := range []string{"old", "new"} {
		keys[k] = filepath.Join(dir, k+".pem")
		if out, err := exec.Command(v2md, "keygen", "-o", keys[k]).CombinedOutput(); err != nil {
			t.Fatalf("keygen: %v %s", err, out)
		}
	}
	mount := filepath.Join(dir, "mount")
	if err := os.Mkdir(mount, 0o700); err != nil {
		t.Fatal(err)
	}
	// Before any rotation the previous key is the current one (create-secrets.sh stores its
	// public half; a private key there is used for its public half only).
	secretMount(t, mount, 1, map[string]string{"jwt-key": keys["old"], "jwt-previous-key": keys["old"]})
	addr := freeAddr(t)
	auth := start(t, "auth", addr, []string{"V2MD_LOG_FORMAT=json"}, "auth", "--listen", addr, "--mysql-dsn", dsn,
		"--jwt-key-file", filepath.Join(mount, "jwt-key"), "--jwt-verify-key-files", filepath.Join(mount, "jwt-previous-key"),
		"--jwt-reload-interval", "100ms", "--bcrypt-cost", "4")

	email := "rotate-" + server.NewID()[:8] + "@example.com"
	body := `{"email":"` + email + `","password":"s3cret-password"}`
	resp, err := http.Post(auth.url()+"/v1/users", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d", resp.StatusCode)
	}
	login := func() string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, auth.url()+"/v1/tokens", nil)
		req.SetBasicAuth(email, "s3cret-password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ Token string }
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("login: %d %v", resp.StatusCode, err)
		}
		return out.Token
	}
	jwks := func() []string {
		resp, err := http.Get(auth.url() + "/.well-known/jwks.json")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var set struct{ Keys []struct{ Kid string } }
		_ = json.NewDecoder(resp.Body).Decode(&set)
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.Kid)
		}
		return kids
	}
	valid := func(tok string) bool {
		req, _ := http.NewRequest(http.MethodGet, auth.url()+"/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}

	before := login()
	oldKid := kidOf(t, before)
	if kids := jwks(); len(kids) != 1 || kids[0] != oldKid {
		t.Fatalf("JWKS before the rotation: %v, want [%s]", kids, oldKid)
	}

	secretMount(t, mount, 2, map[string]string{"jwt-key": keys["new"], "jwt-previous-key": keys["old"]})
	waitUntil(t, 30*time.Second, "auth to reload the rotated key", func() bool {
		kids := jwks()
		return len(kids) == 2 && kids[0] != oldKid && kids[1] == oldKid
	})
	after := login()
	if kidOf(t, after) == oldKid {
		t.Fatalf("a token after the rotation is still signed with %s", oldKid)
	}
	if !valid(before) || !valid(after) {
		t.Errorf("after the rotation: the old token valid %v, the new one %v; want both", valid(before), valid(after))
	}
	if !strings.Contains(auth.out.String(), "JWT keys reloaded") {
		t.Errorf("auth did not log the reload:\n%s", tail(auth.out.String(), 10))
	}
}
