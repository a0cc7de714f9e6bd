package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testmedia"
)

// answer is what a raw HTTP request got.
type answer struct {
	status     int
	retryAfter string
	code, msg  string
}

func call(t *testing.T, method, url string, edit func(*http.Request)) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(req)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return answer{}
	}
	defer resp.Body.Close()
	var e struct {
		Error struct{ Code, Message string }
	}
	json.NewDecoder(resp.Body).Decode(&e)
	return answer{resp.StatusCode, resp.Header.Get("Retry-After"), e.Error.Code, e.Error.Message}
}

func basic(email, password string) func(*http.Request) {
	return func(r *http.Request) {
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(email+":"+password)))
	}
}

func bearerOf(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// wantUnavailable fails unless a is a 503 with a Retry-After.
func wantUnavailable(t *testing.T, what string, a answer) {
	t.Helper()
	if a.status != http.StatusServiceUnavailable || a.retryAfter == "" || a.code != "unavailable" {
		t.Errorf("%s: %d %s %q, Retry-After %q; want 503 unavailable with Retry-After", what, a.status, a.code, a.msg, a.retryAfter)
	}
}

// recovered waits until ok says the service works again, and returns how long that took
// since from.
func recovered(t *testing.T, from time.Time, what string, ok func() bool) time.Duration {
	t.Helper()
	waitUntil(t, 2*time.Minute, what, ok)
	d := time.Since(from)
	t.Logf("recovery: %s %v after the server was back", what, d.Round(10*time.Millisecond))
	return d
}

// TestOutageMySQL: MySQL stops while users log in. Logins, right or wrong password, get 503
// with Retry-After (never 500); the CLI waits, then gives up with exit code 8; a login
// started during the outage succeeds once MySQL is back.
func TestOutageMySQL(t *testing.T) {
	testenv.Get(t, testenv.MySQLDSN) // the packages are installed where the shared one runs
	db := startPrivate(t, "mariadb")
	c := startClusterWith(t, clusterConfig{mysqlDSN: db.vars["V2M_TEST_MYSQL_DSN"]})
	u := c.user("ann")
	gw := c.gateway.url()
	if a := call(t, "POST", gw+"/v1/tokens", basic(u.email, "s3cret-password")); a.status != 200 {
		t.Fatalf("login before the outage: %+v", a)
	}

	db.stop()
	stopped := time.Now()
	wantUnavailable(t, "login with MySQL down", call(t, "POST", gw+"/v1/tokens", basic(u.email, "s3cret-password")))
	a := call(t, "POST", gw+"/v1/tokens", basic(u.email, "wrong-password"))
	wantUnavailable(t, "wrong password with MySQL down", a)
	if a.msg != "the account database is unavailable; try again shortly" {
		t.Errorf("message %q", a.msg)
	}
	wantUnavailable(t, "registration with MySQL down", call(t, "POST", gw+"/v1/users", func(r *http.Request) {
		r.Body = io.NopCloser(strings.NewReader(`{"email":"new-` + u.email + `","password":"s3cret-password"}`))
		r.Header.Set("Content-Type", "application/json")
	}))
	wantUnavailable(t, "auth itself", call(t, "POST", "http://"+c.auth.addr+"/v1/tokens", basic(u.email, "s3cret-password")))
	t.Logf("503 answered %v after MySQL stopped", time.Since(stopped).Round(10*time.Millisecond))

	r := u.run("s3cret-password\n", "login", "--email", u.email, "--password-stdin", "--retry-for", "3s")
	if r.code != 8 || strings.Count(r.stderr, "waiting for it") != 1 || !strings.Contains(r.stderr, "account database is unavailable") {
		t.Errorf("CLI login during the outage: %s; want exit 8 after one waiting line", r)
	}

	// A login started during the outage rides it out.
	var wg sync.WaitGroup
	var during result
	wg.Go(func() { during = u.run("s3cret-password\n", "login", "--email", u.email, "--password-stdin") })
	waitUntil(t, time.Minute, "auth to answer 503 to the CLI", func() bool {
		return strings.Contains(c.auth.out.String(), `"status":503`)
	})
	restart := time.Now()
	db.start()
	back := time.Now()
	t.Logf("MariaDB took %v to start and answer", back.Sub(restart).Round(10*time.Millisecond))
	recovered(t, back, "HTTP login", func() bool {
		return call(t, "POST", gw+"/v1/tokens", basic(u.email, "s3cret-password")).status == 200
	})
	wg.Wait()
	t.Logf("recovery: the CLI login waiting during the outage ended %v after MySQL was back", time.Since(back).Round(10*time.Millisecond))
	if during.code != 0 || strings.Count(during.stderr, "waiting for it") != 1 {
		t.Errorf("CLI login across the outage: %s", during)
	}
	if a := call(t, "POST", gw+"/v1/tokens", basic(u.email, "wrong-password")); a.status != 401 {
		t.Errorf("wrong password after the outage: %+v", a)
	}
	for _, p := range []*proc{c.auth, c.gateway} {
		if strings.Contains(p.out.String(), "[mysql]") || strings.Contains(p.out.String(), u.email) && p == c.auth && strings.Contains(p.out.String(), `"level":"ERROR"`) {
			t.Errorf("%s logged plain driver lines or an address at ERROR", p.name)
		}
		if strings.Contains(p.out.String(), `"status":500`) {
			t.Errorf("%s answered 500 during the outage", p.name)
		}
	}
}

// TestOutageAuthAtGatewayStart: a gateway started while auth is down answers a valid token
// 503 with Retry-After (not 401, which would send the user to log in), and the CLI exits 8,
// not 3; once auth is back the same token works.
func TestOutageAuthAtGatewayStart(t *testing.T) {
	c := startClusterWith(t, clusterConfig{})
	u := c.user("ann")
	tok := httpLogin(t, c.gateway.url(), u.email, "s3cret-password")
	c.auth.stop(syscall.SIGTERM)

	addr := freeAddr(t)
	gw := start(t, "gateway-2", addr, c.env, "gateway", "--listen", addr, "--auth-url", "http://"+c.auth.addr, "--part-size", "1MiB")
	a := call(t, "GET", gw.url()+"/v1/jobs", bearerOf(tok))
	wantUnavailable(t, "valid token at a gateway without auth", a)
	if a.status == 401 {
		t.Fatalf("valid token refused: %+v", a)
	}
	other := newUser(t, gw.url(), u.email)
	other.useToken(tok)
	if r := other.run("", "jobs", "--retry-for", "0"); r.code != 8 || strings.Contains(r.stderr, "v2m login") {
		t.Errorf("CLI with auth down: %s; want exit 8 and no advice to log in", r)
	}
	// A wrong token is still refused at once, whatever auth's state.
	if a := call(t, "GET", gw.url()+"/v1/jobs", bearerOf("not.a.token")); a.status != 401 {
		t.Errorf("garbage token: %+v", a)
	}

	var wg sync.WaitGroup
	var during result
	wg.Go(func() { during = other.run("", "jobs") }) // rides out the outage
	c.auth = start(t, "auth", c.auth.addr, c.env, c.authArgs...)
	back := time.Now()
	recovered(t, back, "a valid token at the new gateway", func() bool {
		return call(t, "GET", gw.url()+"/v1/jobs", bearerOf(tok)).status == 200
	})
	wg.Wait()
	if during.code != 0 {
		t.Errorf("CLI across the outage: %s", during)
	}
}

// TestOutageMongoDB: MongoDB (FerretDB) stops while three users' videos upload. The API
// answers 503 with Retry-After meanwhile, the CLI waits, and after the restart every job
// finishes: nothing lost, one mail per job.
func TestOutageMongoDB(t *testing.T) {
	testenv.Get(t, testenv.MongoURI)
	db := startPrivate(t, "ferretdb")
	c := startClusterWith(t, clusterConfig{converters: 1, mongoURI: db.vars["V2M_TEST_MONGO_URI"]})
	u := c.user("ann")
	tok := httpLogin(t, c.gateway.url(), u.email, "s3cret-password")
	samples := testmedia.Good[:3]
	srcs := make([]string, len(samples))
	for i, s := range samples {
		srcs[i] = media(t, s)
	}
	out := t.TempDir()

	db.stop()
	stopped := time.Now()
	var wg sync.WaitGroup
	results := make([]result, len(samples))
	for i := range samples {
		wg.Go(func() {
			results[i] = u.run("", "upload", srcs[i], "--wait", "--timeout", "5m", "-o", filepath.Join(out, fmt.Sprintf("%d.mp3", i)))
		})
	}
	a := call(t, "GET", c.gateway.url()+"/v1/jobs", bearerOf(tok))
	wantUnavailable(t, "list jobs with MongoDB down", a)
	t.Logf("503 answered %v after MongoDB stopped", time.Since(stopped).Round(10*time.Millisecond))
	waitUntil(t, time.Minute, "an upload to be put off", func() bool {
		return strings.Count(c.gateway.out.String(), `"status":503`) >= 2
	})
	restart := time.Now()
	db.start()
	back := time.Now()
	t.Logf("FerretDB took %v to start and take connections", back.Sub(restart).Round(10*time.Millisecond))
	recovered(t, back, "list jobs", func() bool {
		return call(t, "GET", c.gateway.url()+"/v1/jobs", bearerOf(tok)).status == 200
	})
	wg.Wait()
	t.Logf("recovery: all %d uploads done and converted %v after MongoDB was back", len(samples), time.Since(back).Round(10*time.Millisecond))
	// Every upload rides the outage out; those that were put off (503) say they wait. Some may
	// only have been held by the gateway until the database came back.
	waited := 0
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("upload %d across the outage: %s", i, r)
		} else if strings.Contains(r.stderr, "waiting for it") {
			waited++
		}
	}
	if waited == 0 {
		t.Errorf("no upload said it waited for the server: %+v", results)
	}
	if t.Failed() {
		return
	}
	for i, s := range samples {
		checkMP3(t, filepath.Join(out, fmt.Sprintf("%d.mp3", i)), s.AudioDuration)
	}
	jobs := u.jobs()
	if len(jobs) != len(samples) {
		t.Fatalf("%d jobs for %d uploads", len(jobs), len(samples))
	}
	c.checkOneMailPerJob(u, jobs)
	if strings.Contains(c.gateway.out.String(), `"status":500`) {
		t.Errorf("the gateway answered 500 during the outage")
	}
}
