package server

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. The HTTP layer maps each to one status; see api.statusOf.
const (
	EINVALID      = "invalid"       // 400: the request is malformed or breaks a rule
	EUNAUTHORIZED = "unauthorized"  // 401: missing or bad credentials
	EFORBIDDEN    = "forbidden"     // 403: the credentials are good but may not do this
	ENOTFOUND     = "not_found"     // 404: no such thing, or not the caller's
	ECONFLICT     = "conflict"      // 409: the thing exists, or is in the wrong state
	ETOOLARGE     = "too_large"     // 413: over a configured size limit
	ETIMEOUT      = "timeout"       // 408: the client stopped sending its request
	ERATELIMITED  = "rate_limited"  // 429: too many attempts; retry after Error.RetryAfter
	ELIMIT        = "limit_reached" // 429: a quota on things held at once (open uploads, active jobs); retrying does not help until one ends
	EGONE         = "gone"          // 410: it existed and was deleted for good (an expired MP3)
	EUNAVAILABLE  = "unavailable"   // 503: a backend is down; try again
	EINTERNAL     = "internal"      // 500: a real fault
)

// Error is the domain's error: a code that callers branch on and a message safe to show a user.
type Error struct {
	Code    string
	Message string
	// RetryAfter, when positive, tells the client how long to wait before trying again
	// (ERATELIMITED, and EUNAVAILABLE when the server is busy). HTTP sends it as Retry-After.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for any other
// non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of the first *Error in err's chain,
// or a generic text for internal errors (their details belong in logs, not responses).
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// RetryAfter returns the RetryAfter of the first *Error in err's chain, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// IsCode reports whether err carries the given code.
func IsCode(err error, code string) bool { return ErrorCode(err) == code }

// permanent marks an error that retrying cannot fix (a corrupt video, a malformed message).
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that queues do not retry the delivery that produced it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}
