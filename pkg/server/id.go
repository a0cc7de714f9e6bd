package server

import (
	"crypto/rand"
	"encoding/hex"
)

// NewID returns a new random identifier: 24 lowercase hex digits (96 bits). The same shape as
// a MongoDB ObjectID's hex, so every store can use it as a primary key as it is.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// ValidID reports whether s has the shape NewID produces. Handlers reject other ids with
// not found before they reach a store.
func ValidID(s string) bool {
	if len(s) != 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
