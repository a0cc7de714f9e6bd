package token

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// GenerateEd25519PEM returns a new Ed25519 private key as a PKCS #8 PEM block.
func GenerateEd25519PEM() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKey reads a key file's content for alg: a PKCS #8 Ed25519 private key or a PKIX public
// key (verification only) in PEM for EdDSA, the raw secret (surrounding white space trimmed)
// for HS256.
func ParseKey(alg string, data []byte) (Key, error) {
	switch alg {
	case HS256:
		return NewSecretKey(bytes.TrimSpace(data))
	case EdDSA, "":
		block, _ := pem.Decode(data)
		if block == nil {
			return Key{}, errors.New("no PEM block found (want an Ed25519 key from `v2md keygen`)")
		}
		switch block.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return Key{}, fmt.Errorf("parse private key: %w", err)
			}
			priv, ok := k.(ed25519.PrivateKey)
			if !ok {
				return Key{}, fmt.Errorf("private key is %T, want Ed25519", k)
			}
			return NewEd25519Key(priv), nil
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return Key{}, fmt.Errorf("parse public key: %w", err)
			}
			pub, ok := k.(ed25519.PublicKey)
			if !ok {
				return Key{}, fmt.Errorf("public key is %T, want Ed25519", k)
			}
			return Key{ID: KeyID(pub), Alg: EdDSA, Public: pub}, nil
		default:
			return Key{}, fmt.Errorf("unexpected PEM block %q", block.Type)
		}
	default:
		return Key{}, fmt.Errorf("unknown JWT algorithm %q (want EdDSA or HS256)", alg)
	}
}

// LoadKeyFile reads and parses a key file for alg.
func LoadKeyFile(alg, path string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("read key: %w", err)
	}
	k, err := ParseKey(alg, data)
	if err != nil {
		return Key{}, fmt.Errorf("key %s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreateEd25519 loads the Ed25519 key at path, creating it (mode 0600) on first use.
// Standalone keeps its signing key this way under its data directory.
func LoadOrCreateEd25519(path string) (Key, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		pemBytes, err := GenerateEd25519PEM()
		if err != nil {
			return Key{}, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return Key{}, fmt.Errorf("create key dir: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil && !errors.Is(err, os.ErrExist) {
			return Key{}, fmt.Errorf("create key: %w", err)
		}
		if err == nil {
			_, werr := f.Write(pemBytes)
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return Key{}, fmt.Errorf("write key: %w", werr)
			}
		}
	}
	return LoadKeyFile(EdDSA, path)
}
