package server

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// UserRef names a user known only by email in logs, which must not hold addresses: "u-"
// and the first 12 hex digits of the SHA-256 of the trimmed, lower-cased address. It is the
// same in every service and process, so that an operator can follow one user's lines, and
// find them from the address (by computing its UserRef), but a log reader cannot read the
// address back. It is a plain hash, not a keyed one: someone who guesses an address can check
// the guess.
func UserRef(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return "u-" + hex.EncodeToString(sum[:6])
}
