package api

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/v2m/v2m/pkg/server/throttle"
)

func basicAuth(u, p string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))
}

// limits sets login and registration limits: perEmail and perIP attempts, then one an hour.
func limits(perEmail, perIP int, trusted ...string) func(*Config) {
	return func(c *Config) {
		l := func(b int) *throttle.Store {
			return throttle.NewStore(throttle.Limit{Rate: rate.Every(time.Hour), Burst: b}, 0)
		}
		c.LoginLimit = throttle.NewPolicy(l(perEmail), l(perIP))
		c.RegisterLimit = throttle.NewPolicy(l(perEmail), l(perIP))
		for _, p := range trusted {
			c.TrustedProxies = append(c.TrustedProxies, netip.MustParsePrefix(p))
		}
	}
}

// attempts logs in n times as email with a wrong password and returns the statuses in order.
func (e *env) attempts(n int, email string, hdr ...string) []int {
	e.t.Helper()
	out := make([]int, n)
	for i := range out {
		r := e.do("POST", "/v1/tokens", "", nil, append([]string{"Authorization", basicAuth(email, "wrong-password")}, hdr...)...)
		out[i] = r.code
		if r.code == 429 {
			e.checkThrottled(r)
		}
	}
	return out
}

// checkThrottled checks a 429: the error JSON, a whole number of seconds in Retry-After within
// the limits' refill time, no challenge.
func (e *env) checkThrottled(r resp) {
	e.t.Helper()
	if r.errCode() != "rate_limited" {
		e.t.Fatalf("429 body %s, want code rate_limited", r.body)
	}
	secs, err := strconv.Atoi(r.hdr.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 3600 {
		e.t.Fatalf("Retry-After %q, want whole seconds in 1..3600", r.hdr.Get("Retry-After"))
	}
	if r.hdr.Get("WWW-Authenticate") != "" {
		e.t.Fatalf("429 carries a challenge %q", r.hdr.Get("WWW-Authenticate"))
	}
}

func count(codes []int, code int) (n int) {
	for _, c := range codes {
		if c == code {
			n++
		}
	}
	return n
}

// firstNot returns the index of the first status that is not code.
func firstNot(codes []int, code int) int {
	for i, c := range codes {
		if c != code {
			return i
		}
	}
	return len(codes)
}

func TestLoginThrottledPerEmail(t *testing.T) {
	e := newEnv(t, limits(5, 1000))
	e.user("ann@example.com") // one login: one of ann's five attempts
	known := e.attempts(200, "ann@example.com")
	if firstNot(known, 401) != 4 || count(known, 429) != 196 {
		t.Fatalf("200 bad logins of a known email: %d × 401 then %d × 429, want 4 then 196: %v",
			firstNot(known, 401), count(known, 429), known[:10])
	}
	// The right password does not get through either while the email is throttled.
	if r := e.do("POST", "/v1/tokens", "", nil, "Authorization", basicAuth("ann@example.com", "password123")); r.code != 429 {
		t.Fatalf("right password while throttled: %d", r.code)
	}
	// An unknown email is throttled the same way: nothing tells it apart.
	unknown := e.attempts(201, "nobody@example.com")
	if firstNot(unknown, 401) != 5 || count(unknown, 429) != 196 {
		t.Fatalf("unknown email: %d × 401 then %d × 429, want 5 then 196", firstNot(unknown, 401), count(unknown, 429))
	}
	// Letter case does not make a new bucket; the tutorial's /login shares the limit.
	if r := e.do("POST", "/v1/tokens", "", nil, "Authorization", basicAuth("NoBody@Example.com", "x-password")); r.code != 429 {
		t.Fatalf("other letter case: %d", r.code)
	}
	r := e.do("POST", "/login", "", nil, "Authorization", basicAuth("nobody@example.com", "x-password"))
	if r.code != 429 {
		t.Fatalf("tutorial /login: %d", r.code)
	}
	e.checkThrottled(r)
	// Others are not affected.
	e.user("bob@example.com")
}

func TestLoginThrottledPerIP(t *testing.T) {
	e := newEnv(t, limits(100, 10))
	var codes []int
	for i := range 30 {
		codes = append(codes, e.attempts(1, fmt.Sprintf("user%d@example.com", i))...)
	}
	if firstNot(codes, 401) != 10 || count(codes, 429) != 20 {
		t.Fatalf("30 emails from one IP: %d × 401 then %d × 429, want 10 then 20: %v", firstNot(codes, 401), count(codes, 429), codes)
	}
}

func TestRegistrationThrottled(t *testing.T) {
	e := newEnv(t, limits(100, 3))
	for i, path := range []string{"/v1/users", "/registration", "/v1/users"} {
		body := map[string]string{"email": fmt.Sprintf("u%d@example.com", i), "username": fmt.Sprintf("u%d@example.com", i), "password": "password123"}
		if r := e.do("POST", path, "", jsonBody(body)); r.code != 201 {
			t.Fatalf("registration %d: %d %s", i, r.code, r.body)
		}
	}
	for _, path := range []string{"/v1/users", "/registration"} {
		r := e.do("POST", path, "", jsonBody(map[string]string{"email": "late@example.com", "username": "late@example.com", "password": "password123"}))
		if r.code != 429 {
			t.Fatalf("%s past the limit: %d %s", path, r.code, r.body)
		}
		e.checkThrottled(r)
	}
}

// TestForwardedForNeedsTrustedProxy: X-Forwarded-For changes the client IP only when the peer
// (here 127.0.0.1) is a trusted proxy.
func TestForwardedForNeedsTrustedProxy(t *testing.T) {
	spoof := func(i int) []string { return []string{"X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i)} }
	t.Run("ignored without trusted proxies", func(t *testing.T) {
		e := newEnv(t, limits(100, 3))
		var codes []int
		for i := range 6 {
			codes = append(codes, e.attempts(1, fmt.Sprintf("u%d@example.com", i), spoof(i)...)...)
		}
		if count(codes, 429) != 3 {
			t.Fatalf("a made-up X-Forwarded-For escaped the per-IP limit: %v", codes)
		}
	})
	t.Run("ignored from an untrusted peer", func(t *testing.T) {
		e := newEnv(t, limits(100, 3, "10.0.0.0/8"))
		var codes []int
		for i := range 6 {
			codes = append(codes, e.attempts(1, fmt.Sprintf("u%d@example.com", i), spoof(i)...)...)
		}
		if count(codes, 429) != 3 {
			t.Fatalf("X-Forwarded-For from a peer outside --trusted-proxies was honoured: %v", codes)
		}
	})
	t.Run("honoured from a trusted proxy", func(t *testing.T) {
		e := newEnv(t, limits(100, 3, "127.0.0.0/8"))
		var codes []int
		for i := range 6 {
			codes = append(codes, e.attempts(1, fmt.Sprintf("u%d@example.com", i), spoof(i)...)...)
		}
		if count(codes, 429) != 0 {
			t.Fatalf("distinct clients behind a trusted proxy were throttled together: %v", codes)
		}
		// One client behind the proxy is throttled by its own address, whatever it prepends.
		codes = codes[:0]
		for i := range 5 {
			codes = append(codes, e.attempts(1, fmt.Sprintf("v%d@example.com", i), "X-Forwarded-For", fmt.Sprintf("198.51.100.%d, 192.0.2.9", i))...)
		}
		if firstNot(codes, 401) != 3 || count(codes, 429) != 2 {
			t.Fatalf("one client behind the proxy: %v", codes)
		}
	})
}

func TestLoginChallengeIsBasic(t *testing.T) {
	e := newEnv(t)
	e.user("ann@example.com")
	for _, path := range []string{"/v1/tokens", "/login"} {
		for name, hdr := range map[string][]string{
			"wrong password": {"Authorization", basicAuth("ann@example.com", "wrong-password")},
			"unknown email":  {"Authorization", basicAuth("eve@example.com", "wrong-password")},
			"no credentials": nil,
		} {
			r := e.do("POST", path, "", nil, hdr...)
			if r.code != 401 || r.hdr.Get("WWW-Authenticate") != `Basic realm="v2m"` {
				t.Errorf("%s %s: %d WWW-Authenticate %q, want 401 Basic", path, name, r.code, r.hdr.Get("WWW-Authenticate"))
			}
		}
	}
	for _, path := range []string{"/v1/me", "/v1/jobs", "/validate"} {
		method := "GET"
		if path == "/validate" {
			method = "POST"
		}
		r := e.do(method, path, "bad-token", nil)
		if r.code != 401 || r.hdr.Get("WWW-Authenticate") != `Bearer realm="v2m"` {
			t.Errorf("%s: %d WWW-Authenticate %q, want 401 Bearer", path, r.code, r.hdr.Get("WWW-Authenticate"))
		}
	}
}

// login logs in an existing user again, returning another token.
func (e *env) login(email string) string {
	e.t.Helper()
	r := e.do("POST", "/v1/tokens", "", nil, "Authorization", basicAuth(email, "password123"))
	var tok struct{ Token string }
	if r.code != 200 || r.json(&tok) != nil || tok.Token == "" {
		e.t.Fatalf("login %s: %d %s", email, r.code, r.body)
	}
	return tok.Token
}
