package token

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// secretDir writes files the way the kubelet updates a Secret volume: into a new timestamped
// directory, then an atomic swap of the ..data symlink that the visible names point through.
type secretDir struct {
	t   *testing.T
	dir string
	n   int
}

func (s *secretDir) write(files map[string][]byte) {
	s.t.Helper()
	s.n++
	ts := filepath.Join(s.dir, "..v"+string(rune('0'+s.n)))
	if err := os.Mkdir(ts, 0o700); err != nil {
		s.t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(ts, name), data, 0o600); err != nil {
			s.t.Fatal(err)
		}
		link := filepath.Join(s.dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				s.t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(s.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "..data")); err != nil {
		s.t.Fatal(err)
	}
}

func privatePEM(t *testing.T) []byte {
	t.Helper()
	p, err := GenerateEd25519PEM()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func publicPEM(t *testing.T, priv []byte) []byte {
	t.Helper()
	k, err := ParseKey(EdDSA, priv)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestFileKeysRotation: a rotation in the Secret (new signing key, the old one kept as a
// verification key) is picked up by Reload: new tokens carry the new kid, tokens of the old
// key still verify, the JWKS lists both; a broken key file leaves the keys in use alone.
func TestFileKeysRotation(t *testing.T) {
	sd := &secretDir{t: t, dir: t.TempDir()}
	oldKey, newKey := privatePEM(t), privatePEM(t)
	// Before any rotation the script stores the current key's public half as the previous key.
	sd.write(map[string][]byte{"jwt-key": oldKey, "jwt-previous-key": publicPEM(t, oldKey)})
	keyFile, prevFile := filepath.Join(sd.dir, "jwt-key"), filepath.Join(sd.dir, "jwt-previous-key")
	fk, err := LoadFileKeys(EdDSA, keyFile, []string{prevFile})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(fk.Keys()); n != 1 {
		t.Fatalf("%d keys, want 1 (the previous key is the current one, listed once)", n)
	}
	iss := &Issuer{Signer: fk, Issuer: "v2m", TTL: time.Hour}
	v := &Verifier{Alg: EdDSA, Issuer: "v2m", Keys: fk}
	oldTok, _, err := iss.Issue("a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	oldKid := fk.Signing().ID

	if changed, err := fk.Reload(); err != nil || changed {
		t.Fatalf("Reload of unchanged files: changed %v, err %v", changed, err)
	}

	sd.write(map[string][]byte{"jwt-key": newKey, "jwt-previous-key": publicPEM(t, oldKey)})
	if changed, err := fk.Reload(); err != nil || !changed {
		t.Fatalf("Reload after the rotation: changed %v, err %v", changed, err)
	}
	if fk.Signing().ID == oldKid || fk.Signing().Private == nil {
		t.Fatalf("the signing key is still %s", oldKid)
	}
	newTok, _, err := iss.Issue("b@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{oldTok, newTok} {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("after the rotation: %v", err)
		}
	}
	if jwks := PublicJWKS(fk.Keys()); len(jwks.Keys) != 2 || jwks.Keys[0].Kid != fk.Signing().ID || jwks.Keys[1].Kid != oldKid {
		t.Errorf("JWKS %+v, want the new kid then %s", jwks, oldKid)
	}
	for _, k := range fk.Keys()[1:] {
		if k.Private != nil {
			t.Error("a verification key kept its private half")
		}
	}

	// A half-written or wrong Secret: refused, the keys in use stay.
	signing := fk.Signing().ID
	sd.write(map[string][]byte{"jwt-key": []byte("not a key"), "jwt-previous-key": publicPEM(t, oldKey)})
	if _, err := fk.Reload(); err == nil {
		t.Fatal("Reload accepted a broken signing key")
	}
	sd.write(map[string][]byte{"jwt-key": publicPEM(t, newKey), "jwt-previous-key": publicPEM(t, oldKey)})
	if _, err := fk.Reload(); err == nil {
		t.Fatal("Reload accepted a public key as the signing key")
	}
	if fk.Signing().ID != signing {
		t.Fatalf("a refused reload changed the signing key")
	}
	if _, err := v.Verify(context.Background(), newTok); err != nil {
		t.Errorf("after a refused reload: %v", err)
	}
	if _, err := LoadFileKeys(EdDSA, filepath.Join(sd.dir, "missing"), nil); err == nil {
		t.Error("LoadFileKeys of a missing file succeeded")
	}
}

// TestFileKeysWatch: Watch picks a rotation up by itself and stops with its context.
func TestFileKeysWatch(t *testing.T) {
	sd := &secretDir{t: t, dir: t.TempDir()}
	sd.write(map[string][]byte{"jwt-key": privatePEM(t)})
	fk, err := LoadFileKeys(EdDSA, filepath.Join(sd.dir, "jwt-key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	first := fk.Signing().ID
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { fk.Watch(ctx, 10*time.Millisecond, slog.New(slog.DiscardHandler)); close(done) }()
	sd.write(map[string][]byte{"jwt-key": privatePEM(t)})
	deadline := time.Now().Add(10 * time.Second)
	for fk.Signing().ID == first {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not pick up the new key")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after its context ended")
	}
}
