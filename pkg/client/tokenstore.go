package client

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/zalando/go-keyring"
)

// ErrNoToken is returned by TokenStore.Get when no token is stored.
var ErrNoToken = errors.New("not logged in")

// ErrReadOnlyToken is returned by EnvToken.Set and EnvToken.Delete.
var ErrReadOnlyToken = errors.New("the token comes from the V2M_TOKEN environment variable; unset it to log in or out")

// TokenStore keeps the token for one server.
type TokenStore interface {
	// Get returns the token, or ErrNoToken.
	Get() (string, error)
	// Set stores token, replacing any other.
	Set(token string) error
	// Delete removes the token; no token is not an error.
	Delete() error
}

// KeyringService is the service name under which tokens are kept in the OS keyring.
const KeyringService = "v2m"

// DefaultKeyringTimeout bounds each keyring call: a keyring daemon that hangs must not hang
// the command.
const DefaultKeyringTimeout = 3 * time.Second

// errKeyringUnavailable marks a keyring that did not answer in time.
var errKeyringUnavailable = errors.New("keyring did not answer in time")

// Keyring is a TokenStore in the OS keyring (service "v2m", user = the server URL). Every
// call gives up after Timeout.
type Keyring struct {
	Server  string
	Timeout time.Duration
}

func (k *Keyring) call(fn func() (string, error)) (string, error) {
	d := k.Timeout
	if d <= 0 {
		d = DefaultKeyringTimeout
	}
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1) // buffered: a late answer must not block the goroutine forever
	go func() {
		s, err := fn()
		ch <- result{s, err}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-t.C:
		return "", errKeyringUnavailable
	}
}

// Get implements TokenStore.
func (k *Keyring) Get() (string, error) {
	s, err := k.call(func() (string, error) { return keyring.Get(KeyringService, NormalizeServer(k.Server)) })
	if errors.Is(err, keyring.ErrNotFound) {
		return "", ErrNoToken
	}
	if err != nil {
		return "", fmt.Errorf("keyring: %w", err)
	}
	return s, nil
}

// Set implements TokenStore.
func (k *Keyring) Set(token string) error {
	_, err := k.call(func() (string, error) { return "", keyring.Set(KeyringService, NormalizeServer(k.Server), token) })
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	return nil
}

// Delete implements TokenStore.
func (k *Keyring) Delete() error {
	_, err := k.call(func() (string, error) { return "", keyring.Delete(KeyringService, NormalizeServer(k.Server)) })
	if err != nil && !errors.Is(err, keyring.ErrNotFound) {
		return fmt.Errorf("keyring: %w", err)
	}
	return nil
}

// TokenFile is a TokenStore in a JSON file mapping server URLs to tokens, written with mode
// 0600. It is safe for concurrent use within one process.
type TokenFile struct {
	Server string
	Path   string
	mu     sync.Mutex
}

func (f *TokenFile) read() (map[string]string, error) {
	m := map[string]string{}
	if err := readJSONFile(f.Path, &m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]string{}
	}
	return m, nil
}

// Get implements TokenStore.
func (f *TokenFile) Get() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.read()
	if err != nil {
		return "", err
	}
	t := m[NormalizeServer(f.Server)]
	if t == "" {
		return "", ErrNoToken
	}
	return t, nil
}

// Set implements TokenStore.
func (f *TokenFile) Set(token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.read()
	if err != nil {
		return err
	}
	m[NormalizeServer(f.Server)] = token
	return writeJSONFile(f.Path, m)
}

// Delete implements TokenStore.
func (f *TokenFile) Delete() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.read()
	if err != nil {
		return err
	}
	if _, ok := m[NormalizeServer(f.Server)]; !ok {
		return nil
	}
	delete(m, NormalizeServer(f.Server))
	return writeJSONFile(f.Path, m)
}

// EnvToken is a read-only TokenStore holding a token given in the environment (V2M_TOKEN).
type EnvToken string

// Get implements TokenStore.
func (e EnvToken) Get() (string, error) {
	if e == "" {
		return "", ErrNoToken
	}
	return string(e), nil
}

// Set implements TokenStore; it always fails with ErrReadOnlyToken.
func (EnvToken) Set(string) error { return ErrReadOnlyToken }

// Delete implements TokenStore; it always fails with ErrReadOnlyToken.
func (EnvToken) Delete() error { return ErrReadOnlyToken }

// Fallback is a TokenStore that keeps the token in the OS keyring, and in a file when there
// is no usable keyring (no D-Bus session, no keyring daemon, a keyring that hangs). When it
// first falls back to the file on Set it prints one warning line to Warn.
type Fallback struct {
	Keyring *Keyring
	File    *TokenFile
	Warn    io.Writer
}

// NewTokenStore returns the token store for server: the keyring with a fallback to
// <configDir>/tokens.json, warning on warn. A non-empty envToken (V2M_TOKEN) overrides both
// and makes the store read-only.
func NewTokenStore(server, configDir, envToken string, warn io.Writer) TokenStore {
	if envToken != "" {
		return EnvToken(envToken)
	}
	return &Fallback{
		Keyring: &Keyring{Server: server},
		File:    &TokenFile{Server: server, Path: filepath.Join(configDir, "tokens.json")},
		Warn:    warn,
	}
}

// Get implements TokenStore: the keyring's token, else the file's.
func (s *Fallback) Get() (string, error) {
	if t, err := s.Keyring.Get(); err == nil {
		return t, nil
	}
	return s.File.Get()
}

// Set implements TokenStore.
func (s *Fallback) Set(token string) error {
	if err := s.Keyring.Set(token); err == nil {
		// A token left in the file by an earlier fallback would be stale.
		_ = s.File.Delete()
		return nil
	}
	if err := s.File.Set(token); err != nil {
		return err
	}
	if s.Warn != nil {
		fmt.Fprintf(s.Warn, "warning: no OS keyring; token stored in %s\n", s.File.Path)
	}
	return nil
}

// Delete implements TokenStore: it removes the token from both places. A keyring that cannot
// be reached is not an error, a file that cannot be written is.
func (s *Fallback) Delete() error {
	_ = s.Keyring.Delete()
	return s.File.Delete()
}
