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
	case errors.Is(err, context.DeadlineExceeded):
		return ExitTimeout
	case client.IsUnreachable(err):
		return ExitUnreachable
	}
	return ExitError
}

var codeNames = map[int]string{
	ExitError: "error", ExitUsage: "usage", ExitAuth: "unauthorized", ExitNotFound: "not_found",
	ExitJobFailed: "job_failed", ExitTimeout: "timeout", ExitUnreachable: "unreachable",
	ExitInterrupted: "interrupted",
}

// report prints err on stderr (and with --json as an errorJSON on stdout) and returns its exit
// code.
func (f *factory) report(err error) int {
	code := exitCode(err)
	msg := err.Error()
	switch code {
	case ExitAuth:
		msg += " (run 'v2m login')"
	case ExitUnreachable:
		server := ""
		if cfg, cerr := f.config(); cerr == nil {
			server = cfg.Server
		}
		msg = fmt.Sprintf("cannot reach the server %s: %v", server, err)
	case ExitUsage:
		msg += " (see 'v2m --help')"
	}
	fmt.Fprintf(f.io.errOut, "v2m: %s\n", msg)
	if f.flags.json {
		out := errorJSON{Error: errorBody{Code: codeNames[code], Exit: code, Message: err.Error()}}
		if ae := (*client.APIError)(nil); errors.As(err, &ae) && ae.Code != "" {
			out.Error.Code = ae.Code
		}
		if ee := (*exitError)(nil); errors.As(err, &ee) && ee.job != nil {
			out.Job = newJobJSON(ee.job)
		}
		_ = printJSON(f.io.out, out)
	}
	return code
}
