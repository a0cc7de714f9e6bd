package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/v2m/v2m/pkg/wire"
)

// DefaultUserAgent is sent when no other User-Agent is configured.
const DefaultUserAgent = "v2m-go-client"

// Client talks to a v2m server. Its fields may be set directly after New; a Client must not
// be changed while requests are running. It is safe for concurrent use otherwise.
type Client struct {
	// BaseURL is the server's root, e.g. "http://127.0.0.1:8080", without a trailing slash.
	BaseURL string
	// HTTP sends the requests. It should have no overall Timeout: long-polls take up to a
	// minute and uploads as long as they take; use contexts instead.
	HTTP *http.Client
	// Token is the bearer token sent on authenticated routes; "" sends none.
	Token string
	// UserAgent is sent with every request.
	UserAgent string
	// Retry says how requests ride out a server that answers 503 (unavailable) or 429 (too
	// many requests). Its zero value sends each request once.
	Retry RetryPolicy
}

// RetryPolicy says how a Client retries requests that the server put off with 503 or 429.
// It retries only the requests that are safe to send twice: every GET, HEAD, PUT and DELETE,
// upload parts, logging in, starting an upload (a 503 means none was started; one started
// twice is an abandoned upload, not a second job) and completing one (idempotent on the
// server). Each waits what the answer's Retry-After says (a backoff from 250 ms doubling to
// 8 s when it says nothing), until the next wait would end more than For after the request
// was first sent: then the last answer is returned.
type RetryPolicy struct {
	For time.Duration // 0: no retries on 503 and 429
	// Waiting, when not nil, is called before each wait, with the wait and the answer that
	// caused it. It may be called from several goroutines at once (parallel upload parts).
	Waiting func(wait time.Duration, err error)
}

// wait returns how long to wait before sending again, at attempt number attempt (from
// 1), a request first sent at start that failed with err; false when it is not to be retried
// (not a 503 or 429, no retries configured, or the time is up).
func (p RetryPolicy) wait(err error, start time.Time, attempt int) (time.Duration, bool) {
	var ae *APIError
	if p.For <= 0 || !IsPutOff(err) || !errors.As(err, &ae) {
		return 0, false
	}
	d := ae.RetryAfter
	if d <= 0 {
		d = backoff(attempt)
	}
	if time.Since(start)+d > p.For {
		return 0, false
	}
	return d, true
}

// IsPutOff reports whether the server put the request off for a while: 503 (unavailable) or
// 429 (too many attempts), which a later try may pass. A 429 "limit_reached" is not: the user
// holds as many uploads or jobs as their quota allows, and only the end of one helps.
func IsPutOff(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	return ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusTooManyRequests && ae.Code != "limit_reached"
}

// retryLater waits out err, at attempt number attempt of a request first sent at start, and
// reports whether to send the request again; false when err is not one to retry or ctx ended.
func (c *Client) retryLater(ctx context.Context, err error, start time.Time, attempt int) bool {
	d, ok := c.Retry.wait(err, start, attempt)
	if !ok {
		return false
	}
	if c.Retry.Waiting != nil {
		c.Retry.Waiting(d, err)
	}
	return sleepCtx(ctx, d) == nil
}

// waitedOut reports whether err is a 503 or 429 that a retrying request waited out already:
// retrying it again would stretch RetryPolicy.For.
func (c *Client) waitedOut(err error) bool {
	return c.Retry.For > 0 && IsPutOff(err)
}

// retryable reports whether a request may be sent again after a 503 or 429; see RetryPolicy.
func retryable(method, path string) bool {
	if method != http.MethodPost {
		return true
	}
	return path == "/v1/tokens" || path == "/v1/uploads" || strings.HasSuffix(path, "/complete")
}

// Option configures a Client in New.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests with h.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.HTTP = h } }

// WithToken sets the bearer token.
func WithToken(token string) Option { return func(c *Client) { c.Token = token } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.UserAgent = ua } }

// New returns a Client for the server at baseURL (http or https).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("server URL %q: scheme must be http or https", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("server URL %q: no host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("server URL %q: must not have a query or fragment", baseURL)
	}
	c := &Client{
		BaseURL:   strings.TrimRight(u.String(), "/"),
		UserAgent: DefaultUserAgent,
	}
	for _, o := range opts {
		o(c)
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return c, nil
}

// NormalizeServer returns the canonical form of a server URL, the key under which tokens and
// upload state are kept: trimmed, without a trailing slash.
func NormalizeServer(server string) string {
	return strings.TrimRight(strings.TrimSpace(server), "/")
}

// APIError is an error answered by the server: {"error":{"code":"...","message":"..."}}.
type APIError struct {
	Status  int    // the HTTP status
	Code    string // e.g. "not_found", "unauthorized"
	Message string // for people
	// RetryAfter is the answer's Retry-After (in seconds; an HTTP date is not read), or 0.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = strings.ToLower(http.StatusText(e.Status))
	}
	if e.Code == "" {
		return fmt.Sprintf("%s (HTTP %d)", msg, e.Status)
	}
	return fmt.Sprintf("%s (%s)", msg, e.Code)
}

// StatusOf returns the HTTP status of the APIError in err's chain, or 0.
func StatusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// IsNotFound reports whether err is a 404 from the server.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// IsUnauthorized reports whether err is a 401 from the server.
func IsUnauthorized(err error) bool { return StatusOf(err) == http.StatusUnauthorized }

// IsUnreachable reports whether err means the server could not be reached at all: the
// connection was refused, the name did not resolve, or dialling timed out.
func IsUnreachable(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return false
}

// ConnError is a request that got no answer: the server could not be reached, or the
// connection broke. Its message is the reason in a few words ("connection refused", "no such
// host v2m.example.com", "timed out"), without the transport's details; Err, which it
// unwraps to, has them.
type ConnError struct {
	Err error
}

func (e *ConnError) Unwrap() error { return e.Err }

func (e *ConnError) Error() string {
	err := e.Err
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the server closed the connection"
	case errors.As(err, &dns) && dns.IsNotFound:
		return "no such host " + dns.Name
	case errors.As(err, &dns):
		return "cannot resolve " + dns.Name
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) && se.Err != nil {
		err = se.Err
	}
	return err.Error()
}

// transient reports whether a request that failed with err is worth retrying: network
// errors (other than the context ending) and 5xx answers.
func transient(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500 || IsPutOff(err) || ae.Status == http.StatusRequestTimeout
	}
	return true
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newRequest builds a request for path (starting with "/") with the usual headers.
func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return nil, err
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

// send runs req and turns a non-2xx answer into an *APIError (closing its body).
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, &ConnError{Err: err}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeError(resp)
}

// sendRetrying is send for a request without a body, sent again after 503 and 429 answers
// as c.Retry says.
func (c *Client) sendRetrying(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := c.send(req)
	for attempt := 1; err != nil && c.retryLater(req.Context(), err, start, attempt); attempt++ {
		resp, err = c.send(req.Clone(req.Context()))
	}
	return resp, err
}

// decodeError reads an error answer. A body that is not the documented shape still gives an
// APIError with the status and a short excerpt of the body.
func decodeError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var env wire.ErrorBody
	ae := &APIError{Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
	if json.Unmarshal(body, &env) == nil && (env.Error.Code != "" || env.Error.Message != "") {
		ae.Code, ae.Message = env.Error.Code, env.Error.Message
		return ae
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	ae.Message = msg
	return ae
}

// parseRetryAfter reads a Retry-After in seconds, at most a day; 0 when absent or not a number.
func parseRetryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 86400)) * time.Second
}

// doJSON sends in (when not nil) as JSON and decodes the answer into out (when not nil). A
// request that may be sent twice is sent again after 503 and 429 answers, as c.Retry says.
func (c *Client) doJSON(ctx context.Context, method, path string, in, out any, edit func(*http.Request)) error {
	var b []byte
	if in != nil {
		var err error
		if b, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := c.doJSONOnce(ctx, method, path, b, out, edit)
		if err == nil || !retryable(method, path) || !c.retryLater(ctx, err, start, attempt) {
			return err
		}
	}
}

func (c *Client) doJSONOnce(ctx context.Context, method, path string, in []byte, out any, edit func(*http.Request)) error {
	var body io.Reader
	if in != nil {
		body = bytes.NewReader(in)
	}
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if edit != nil {
		edit(req)
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s answer: %w", method, path, err)
	}
	return nil
}

// Register creates an account.
func (c *Client) Register(ctx context.Context, email, password string) (*User, error) {
	var u User
	in := wire.Credentials{Email: email, Password: password}
	if err := c.doJSON(ctx, http.MethodPost, "/v1/users", in, &u, nil); err != nil {
		return nil, fmt.Errorf("register %s: %w", email, err)
	}
	return &u, nil
}

// Login exchanges an email and password for a token (POST /v1/tokens with HTTP Basic). It
// does not change c.Token.
func (c *Client) Login(ctx context.Context, email, password string) (*Token, error) {
	var t Token
	err := c.doJSON(ctx, http.MethodPost, "/v1/tokens", nil, &t, func(r *http.Request) {
		r.Header.Del("Authorization")
		r.SetBasicAuth(email, password)
	})
	if err != nil {
		return nil, fmt.Errorf("log in as %s: %w", email, err)
	}
	if t.Token == "" {
		return nil, fmt.Errorf("log in as %s: the server answered no token", email)
	}
	return &t, nil
}

// Logout revokes c.Token on the server (DELETE /v1/tokens/current): from then on the server
// refuses it. It does not change c.Token.
func (c *Client) Logout(ctx context.Context) error {
	if err := c.doJSON(ctx, http.MethodDelete, "/v1/tokens/current", nil, nil, nil); err != nil {
		return fmt.Errorf("revoke the token: %w", err)
	}
	return nil
}

// Me describes the caller's token.
func (c *Client) Me(ctx context.Context) (*Me, error) {
	var m Me
	if err := c.doJSON(ctx, http.MethodGet, "/v1/me", nil, &m, nil); err != nil {
		return nil, fmt.Errorf("who am I: %w", err)
	}
	return &m, nil
}

// Jobs returns the caller's jobs, newest first.
func (c *Client) Jobs(ctx context.Context) ([]Job, error) {
	var out wire.JobList
	if err := c.doJSON(ctx, http.MethodGet, "/v1/jobs", nil, &out, nil); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	if out.Jobs == nil {
		out.Jobs = []Job{}
	}
	return out.Jobs, nil
}

// Job returns one of the caller's jobs.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	var j Job
	if err := c.doJSON(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil, &j, nil); err != nil {
		return nil, fmt.Errorf("get job %s: %w", id, err)
	}
	return &j, nil
}

// minPoll is the least time between two polls of Wait.
const minPoll = time.Second

// LongPoll is how long each request of Wait asks the server to hold the answer.
const LongPoll = 30 * time.Second

// Wait long-polls job id until it is done or failed, or ctx ends (then it returns ctx's
// error, wrapped, with the last job seen). progress, when not nil, is called with every
// answer. A failed job is returned with a nil error: check Job.State. Network errors and 5xx
// answers are retried with backoff, up to a few in a row.
func (c *Client) Wait(ctx context.Context, id string, progress func(*Job)) (*Job, error) {
	path := "/v1/jobs/" + url.PathEscape(id) + "?wait=" + LongPoll.String()
	var last *Job
	failures := 0
	for {
		var j Job
		start := time.Now()
		err := c.doJSON(ctx, http.MethodGet, path, nil, &j, nil)
		switch {
		case err == nil:
			failures = 0
			last = &j
			if progress != nil {
				progress(last)
			}
			if j.Final() {
				return last, nil
			}
			// A proxy or server that does not hold the request must not make this a busy loop.
			if d := minPoll - time.Since(start); d > 0 {
				if err := sleepCtx(ctx, d); err != nil {
					return last, fmt.Errorf("wait for job %s: %w", id, err)
				}
			}
			continue
		case ctx.Err() != nil:
			return last, fmt.Errorf("wait for job %s: %w", id, ctx.Err())
		case transient(ctx, err) && failures < 5 && !c.waitedOut(err):
			failures++
			if err := sleepCtx(ctx, backoff(failures)); err != nil {
				return last, fmt.Errorf("wait for job %s: %w", id, err)
			}
		default:
			return last, fmt.Errorf("wait for job %s: %w", id, err)
		}
	}
}

// backoff is the pause before retry number n (from 1): 250 ms doubling, at most 8 s.
func backoff(n int) time.Duration {
	d := 250 * time.Millisecond << min(n-1, 5)
	return min(d, 8*time.Second)
}

// DeleteJob removes one of the caller's jobs with its video and MP3s.
func (c *Client) DeleteJob(ctx context.Context, id string) error {
	if err := c.doJSON(ctx, http.MethodDelete, "/v1/jobs/"+url.PathEscape(id), nil, nil, nil); err != nil {
		return fmt.Errorf("remove job %s: %w", id, err)
	}
	return nil
}

// UserLimits returns the limits an administrator set for the user with this email (nil
// fields take the server's defaults). Administrators only.
func (c *Client) UserLimits(ctx context.Context, email string) (*Limits, error) {
	var l Limits
	if err := c.doJSON(ctx, http.MethodGet, "/v1/admin/users/"+url.PathEscape(email)+"/limits", nil, &l, nil); err != nil {
		return nil, fmt.Errorf("limits of %s: %w", email, err)
	}
	return &l, nil
}

// SetUserLimits replaces the limits of the user with this email. Administrators only.
func (c *Client) SetUserLimits(ctx context.Context, email string, l Limits) (*Limits, error) {
	var out Limits
	if err := c.doJSON(ctx, http.MethodPut, "/v1/admin/users/"+url.PathEscape(email)+"/limits", l, &out, nil); err != nil {
		return nil, fmt.Errorf("set limits of %s: %w", email, err)
	}
	return &out, nil
}
