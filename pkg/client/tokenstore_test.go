package client

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zalando/go-keyring"
)

func TestFallbackUsesKeyring(t *testing.T) {
	keyring.MockInit()
	dir := t.TempDir()
	var warn bytes.Buffer
	st := NewTokenStore("http://h:1/", dir, "", &warn)
	if _, err := st.Get(); !errors.Is(err, ErrNoToken) {
		t.Fatalf("empty store: %v", err)
	}
	if err := st.Set("tok1"); err != nil {
		t.Fatal(err)
	}
	if got, err := keyring.Get("v2m", "http://h:1"); err != nil || got != "tok1" {
		t.Fatalf("keyring has %q %v", got, err)
	}
	if got, err := st.Get(); err != nil || got != "tok1" {
		t.Fatalf("Get = %q %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tokens.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("token file written although the keyring works: %v", err)
	}
	if warn.Len() != 0 {
		t.Fatalf("warned: %q", warn.String())
	}
	if err := st.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(); !errors.Is(err, ErrNoToken) {
		t.Fatalf("after Delete: %v", err)
	}
	if err := st.Delete(); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}

func TestFallbackToFileWithoutKeyring(t *testing.T) {
	keyring.MockInitWithError(errors.New(`exec: "dbus-launch": executable file not found in $PATH`))
	dir := filepath.Join(t.TempDir(), "v2m")
	var warn bytes.Buffer
	st := NewTokenStore("http://h:1", dir, "", &warn)
	if err := st.Set("tok1"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tokens.json")
	if want := "warning: no OS keyring; token stored in " + path + "\n"; warn.String() != want {
		t.Fatalf("warning %q, want %q", warn.String(), want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	// A second server shares the file.
	other := NewTokenStore("http://other:2", dir, "", &warn)
	if err := other.Set("tok2"); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get(); err != nil || got != "tok1" {
		t.Fatalf("Get = %q %v", got, err)
	}
	if got, err := other.Get(); err != nil || got != "tok2" {
		t.Fatalf("other Get = %q %v", got, err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"http://h:1": "tok1"`) {
		t.Fatalf("file content %s", b)
	}
	if err := st.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(); !errors.Is(err, ErrNoToken) {
		t.Fatalf("after Delete: %v", err)
	}
	if got, _ := other.Get(); got != "tok2" {
		t.Fatalf("Delete removed the other server's token")
	}
}

func TestFileModeIsFixedOnRewrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &TokenFile{Server: "http://h", Path: path}
	if err := f.Set("t"); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	if err := os.WriteFile(path, []byte(`not json`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get(); err == nil {
		t.Fatal("a corrupt token file read fine")
	}
}

func TestEnvTokenIsReadOnly(t *testing.T) {
	keyring.MockInit()
	st := NewTokenStore("http://h", t.TempDir(), "envtok", nil)
	if got, err := st.Get(); err != nil || got != "envtok" {
		t.Fatalf("Get = %q %v", got, err)
	}
	if err := st.Set("x"); !errors.Is(err, ErrReadOnlyToken) {
		t.Fatalf("Set: %v", err)
	}
	if err := st.Delete(); !errors.Is(err, ErrReadOnlyToken) {
		t.Fatalf("Delete: %v", err)
	}
}

func TestKeyringCallGivesUp(t *testing.T) {
	k := &Keyring{Server: "http://h", Timeout: 10 * time.Millisecond}
	block := make(chan struct{})
	defer close(block)
	_, err := k.call(func() (string, error) { <-block; return "", nil })
	if !errors.Is(err, errKeyringUnavailable) {
		t.Fatalf("err = %v", err)
	}
}
