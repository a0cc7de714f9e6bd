package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/v2m/v2m/pkg/client"
)

// exitError carries an exit code and, for a failed job, the job.
type exitError struct {
	code int
	err  error
	job  *client.Job
	// printed: the command printed its --json document already (one with the errors in it),
	// so no errorJSON follows it.
	printed bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// exitCode classifies err.
func exitCode(err error) int {
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, client.ErrNoToken), client.IsUnauthorized(err):
		return ExitAuth
	case client.IsNotFound(err):
		return ExitNotFound
	case errors.Is(err, context.Canceled): // only Ctrl-C cancels
		return ExitInterrupted
	case errors.Is(err, context.DeadlineExceeded):
		return ExitTimeout
	case client.IsUnreachable(err):
		return ExitUnreachable
	case client.IsPutOff(err):
		return ExitUnavailable
	}
	return ExitError
}

var codeNames = map[int]string{
	ExitError: "error", ExitUsage: "usage", ExitAuth: "unauthorized", ExitNotFound: "not_found",
	ExitJobFailed: "job_failed", ExitTimeout: "timeout", ExitUnreachable: "unreachable",
	ExitInterrupted: "interrupted", ExitUnavailable: "unavailable",
}

// errorCode is the code --json gives err, whose exit code is code: the API's when the server
// answered one, else the exit code's name.
func errorCode(code int, err error) string {
	if ae := (*client.APIError)(nil); errors.As(err, &ae) && ae.Code != "" {
		return ae.Code
	}
	return codeNames[code]
}

// message is what the user reads of err, whose exit code is code: the server's own words for
// what it did not find, and the reason in a few words when it could not be reached.
func (f *factory) message(code int, err error) string {
	switch code {
	case ExitNotFound:
		if ae := (*client.APIError)(nil); errors.As(err, &ae) && ae.Message != "" {
			return ae.Message
		}
	case ExitUnreachable:
		server := ""
		if cfg, cerr := f.config(); cerr == nil {
			server = cfg.Server
		}
		reason := err.Error()
		if ce := (*client.ConnError)(nil); errors.As(err, &ce) {
			reason = ce.Error()
		}
		return fmt.Sprintf("cannot reach the server at %s: %s — is v2md running?", server, reason)
	}
	return err.Error()
}

// report prints err on stderr (and with --json as an errorJSON on stdout, unless the command
// printed its own document) and returns its exit code.
func (f *factory) report(err error) int {
	code := exitCode(err)
	text := f.message(code, err)
	msg := text
	switch code {
	case ExitAuth:
		msg += " (run 'v2m login')"
	case ExitUsage:
		msg += " (see 'v2m --help')"
	case ExitUnavailable:
		if cfg, cerr := f.config(); cerr == nil && cfg.RetryFor > 0 {
			msg += fmt.Sprintf(" (gave up after retrying for up to %s; try again later)", cfg.RetryFor)
		} else {
			msg += " (try again later)"
		}
	}
	fmt.Fprintf(f.io.errOut, "v2m: %s\n", msg)
	if ee := (*exitError)(nil); errors.As(err, &ee) && ee.printed {
		return code
	}
	if f.flags.json {
		out := errorJSON{Error: errorBody{Code: errorCode(code, err), Exit: code, Message: text}}
		if ee := (*exitError)(nil); errors.As(err, &ee) && ee.job != nil {
			out.Job = newJobJSON(ee.job)
		}
		_ = printJSON(f.io.out, out)
	}
	return code
}
