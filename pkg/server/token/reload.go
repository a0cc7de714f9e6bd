package token

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultReloadInterval is how often FileKeys.Watch reads its files again.
const DefaultReloadInterval = 15 * time.Second

// FileKeys is the signing key and the verification keys of auth, read from files and read
// again when they change: a Kubernetes Secret volume is updated in place (an atomic symlink
// swap) when the Secret changes, so a rotated key takes effect without a restart. It is a
// KeySource, and Signing gives the key Issuer signs with. Safe for concurrent use.
type FileKeys struct {
	alg         string
	keyFile     string
	verifyFiles []string

	mu     sync.RWMutex
	keys   []Key // keys[0] signs; the rest verify only, no kid twice
	digest [sha256.Size]byte
}

// LoadFileKeys reads keyFile (the signing key) and verifyFiles (older keys that stay valid
// for verification; a private key there is used for its public half only) for alg.
func LoadFileKeys(alg, keyFile string, verifyFiles []string) (*FileKeys, error) {
	f := &FileKeys{alg: alg, keyFile: keyFile, verifyFiles: verifyFiles}
	if _, err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads the files again and swaps the keys in when their content changed. On any
// error the keys in use stay as they are: a Secret caught half-written never leaves auth
// without a key.
func (f *FileKeys) Reload() (changed bool, err error) {
	h := sha256.New()
	var datas [][]byte
	for _, p := range append([]string{f.keyFile}, f.verifyFiles...) {
		data, err := os.ReadFile(p)
		if err != nil {
			return false, fmt.Errorf("read key: %w", err)
		}
		datas = append(datas, data)
		h.Write(data)
		h.Write([]byte{0})
	}
	var digest [sha256.Size]byte
	copy(digest[:], h.Sum(nil))
	f.mu.RLock()
	same := f.keys != nil && bytes.Equal(digest[:], f.digest[:])
	f.mu.RUnlock()
	if same {
		return false, nil
	}
	signing, err := ParseKey(f.alg, datas[0])
	if err != nil {
		return false, fmt.Errorf("key %s: %w", f.keyFile, err)
	}
	if signing.Alg == EdDSA && signing.Private == nil {
		return false, fmt.Errorf("key %s: the signing key must be a private key", f.keyFile)
	}
	keys := []Key{signing}
	seen := map[string]bool{signing.ID: true}
	for i, data := range datas[1:] {
		k, err := ParseKey(f.alg, data)
		if err != nil {
			return false, fmt.Errorf("key %s: %w", f.verifyFiles[i], err)
		}
		k.Private = nil // verification only
		if seen[k.ID] {
			continue
		}
		seen[k.ID] = true
		keys = append(keys, k)
	}
	f.mu.Lock()
	f.keys, f.digest = keys, digest
	f.mu.Unlock()
	return true, nil
}

// Signing returns the key tokens are signed with now.
func (f *FileKeys) Signing() Key {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.keys[0]
}

// Keys returns every key in use, the signing key first.
func (f *FileKeys) Keys() []Key {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return append([]Key(nil), f.keys...)
}

// Key implements KeySource.
func (f *FileKeys) Key(ctx context.Context, kid string) (Key, error) {
	return StaticKeys(f.Keys()).Key(ctx, kid)
}

// Watch calls Reload every interval (DefaultReloadInterval when zero) until ctx ends,
// logging each change and each failure.
func (f *FileKeys) Watch(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = DefaultReloadInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := f.Reload()
		switch {
		case err != nil:
			log.Error("JWT keys not reloaded; the keys in use stay", "err", err)
		case changed:
			keys := f.Keys()
			log.Info("JWT keys reloaded", "kid", keys[0].ID, "verification_keys", len(keys))
		}
	}
}
