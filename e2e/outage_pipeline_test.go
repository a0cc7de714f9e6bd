package e2e

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testmedia"
)

// private is a server of one test's own, started by scripts/services.sh in a data directory
// of its own on free ports, so that the test may stop it; the shared servers are never stopped.
type private struct {
	t    *testing.T
	dir  string
	env  []string          // SERVICES and the ports, for every services.sh call
	vars map[string]string // env.sh's exports (V2M_TEST_*)
}

// freePort returns a free port in [lo, hi).
func freePort(t *testing.T, lo, hi int) int {
	t.Helper()
	for range 200 {
		p := lo + rand.IntN(hi-lo)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatalf("no free port in %d-%d", lo, hi)
	return 0
}

// startPrivate starts service (rabbitmq, ferretdb, mariadb or mailpit) and stops it when the
// test ends.
func startPrivate(t *testing.T, service string) *private {
	t.Helper()
	p := &private{t: t, dir: t.TempDir(), env: []string{"SERVICES=" + service}}
	switch service {
	case "rabbitmq":
		// Below the ephemeral ports, and clear of rabbitmqctl's distribution ports.
		p.env = append(p.env, fmt.Sprintf("RABBITMQ_PORT=%d", freePort(t, 20000, 25000)),
			fmt.Sprintf("RABBITMQ_DIST_PORT=%d", freePort(t, 26000, 30000)))
	case "ferretdb":
		p.env = append(p.env, fmt.Sprintf("MONGO_PORT=%d", freePort(t, 20000, 30000)))
	case "mariadb":
		p.env = append(p.env, fmt.Sprintf("MYSQL_PORT=%d", freePort(t, 20000, 30000)))
	case "mailpit":
		p.env = append(p.env, fmt.Sprintf("SMTP_PORT=%d", freePort(t, 20000, 25000)),
			fmt.Sprintf("MAILPIT_HTTP_PORT=%d", freePort(t, 25000, 30000)))
	}
	t.Cleanup(func() { p.services("down") })
	p.services("up")
	b, err := os.ReadFile(filepath.Join(p.dir, "env.sh"))
	if err != nil {
		t.Fatal(err)
	}
	p.vars = map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			p.vars[k] = strings.Trim(v, `"'`)
		}
	}
	return p
}

// services runs scripts/services.sh on p's data directory.
func (p *private) services(args ...string) {
	p.t.Helper()
	t0 := time.Now()
	cmd := exec.Command("bash", append([]string{"../scripts/services.sh", "--data", p.dir}, args...)...)
	cmd.Env = append(os.Environ(), p.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("services.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	p.t.Logf("services.sh %s %s took %v", p.env[0], strings.Join(args, " "), time.Since(t0).Round(time.Millisecond))
}

func (p *private) stop()  { p.services("down") }
func (p *private) start() { p.services("up") }

// clusterOnPrivate starts a cluster of one gateway and the given converters on the shared
// servers, but for service, which is a private one that the test may stop.
func clusterOnPrivate(t *testing.T, service string, converters int, gatewayArgs ...string) (*cluster, *private) {
	t.Helper()
	srv := sharedServers(t)
	p := startPrivate(t, service)
	switch service {
	case "rabbitmq":
		srv.amqpURL = p.vars[testenv.AMQPURL]
	case "ferretdb":
		srv.mongoURI = p.vars[testenv.MongoURI]
	case "mailpit":
		srv.smtpAddr, srv.mailpitAPI = p.vars[testenv.SMTPAddr], p.vars[testenv.MailpitAPI]
	}
	return startClusterOn(t, srv, 1, converters, gatewayArgs...), p
}

// readyz returns the status of p's /readyz, 0 when it does not answer.
func readyz(p *proc) int {
	resp, err := http.Get(p.url() + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// quantile returns the q-quantile of ds (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// waitJobs waits until every job of u is final and returns them.
func waitJobs(t *testing.T, u *user, n int, timeout time.Duration) []job {
	t.Helper()
	var jobs []job
	waitUntil(t, timeout, fmt.Sprintf("%d jobs to finish", n), func() bool {
		jobs = u.jobs()
		if len(jobs) != n {
			return false
		}
		for _, j := range jobs {
			if j.State != "done" && j.State != "failed" {
				return false
			}
		}
		return true
	})
	for _, j := range jobs {
		if j.State != "done" {
			t.Errorf("job %s is %s", j.ID, j.State)
		}
	}
	return jobs
}

// TestOutageSMTP: the mail server is down while jobs finish. notify answers not ready, the mails
// are retried, and once it is back each is delivered once, promptly.
func TestOutageSMTP(t *testing.T) {
	c, mp := clusterOnPrivate(t, "mailpit", 1)
	mp.stop()
	waitUntil(t, 30*time.Second, "notify to report not ready", func() bool { return readyz(c.notify) == http.StatusServiceUnavailable })
	u := c.user("ann")
	uploadAll(t, u, testmedia.Good[:4], t.TempDir())
	jobs := waitJobs(t, u, 4, 2*time.Minute)
	waitUntil(t, time.Minute, "the mails to be retried", func() bool {
		return strings.Count(c.notify.out.String(), "retrying later") >= 4
	})
	// Held down a while longer, so that the retries' backoffs differ.
	time.Sleep(10 * time.Second)
	mp.start()
	back := time.Now() // Mailpit answers
	var last time.Duration
	waitUntil(t, 2*time.Minute, "every mail after SMTP came back", func() bool {
		last = time.Since(back)
		return len(c.mails(u.email)) >= len(jobs)
	})
	t.Logf("SMTP outage: all %d mails delivered %v after Mailpit was back", len(jobs), last.Round(100*time.Millisecond))
	c.checkOneMailPerJob(u, jobs)
	waitUntil(t, 30*time.Second, "notify to be ready again", func() bool { return readyz(c.notify) == http.StatusOK })
}

// TestOutageBroker: RabbitMQ is stopped, jobs are uploaded meanwhile (their publish fails and
// they stay queued), and once it is back the gateway publishes them again at once, not after
// --sweep-queued-after.
func TestOutageBroker(t *testing.T) {
	c, mq := clusterOnPrivate(t, "rabbitmq", 1, "--sweep-queued-after", "10m")
	u := c.user("ann")
	mq.stop()
	var ids []string
	for _, s := range testmedia.Good[:3] {
		r := u.run("", "upload", media(t, s))
		if r.code != 0 {
			t.Fatalf("upload while the broker is down: %s", r)
		}
		ids = append(ids, strings.TrimSpace(r.stdout))
	}
	mq.start()
	back := time.Now() // the broker is ready
	waitJobs(t, u, len(ids), 2*time.Minute)
	t.Logf("broker outage: %d jobs uploaded during it finished %v after the broker was back", len(ids), time.Since(back).Round(100*time.Millisecond))
	if !strings.Contains(c.gateway.out.String(), "queued jobs published again after the broker came back") {
		t.Error("the gateway did not say it published the queued jobs again")
	}
	c.checkOneMailPerJob(u, u.jobs())
}

// TestOutageMongoDuringConversion: MongoDB stops while ffmpeg converts. The conversion goes
// on, the MP3 is kept, and once the database is back it is stored and the job finished: one
// conversion, one mail.
func TestOutageMongoDuringConversion(t *testing.T) {
	c, mg := clusterOnPrivate(t, "ferretdb", 1)
	u := c.user("ann")
	r := u.must("", "upload", media(t, longSample))
	id := strings.TrimSpace(r.stdout)
	conv := c.converters[0]
	waitUntil(t, 2*time.Minute, "the conversion to start", func() bool { return started(conv.out.String(), id) })
	mg.stop()
	waitUntil(t, 2*time.Minute, "the converter to keep its result", func() bool {
		return strings.Contains(conv.out.String(), "cannot record the converted result yet")
	})
	mg.start()
	back := time.Now()
	waitJobs(t, u, 1, 3*time.Minute)
	t.Logf("MongoDB outage during a conversion: the job was done %v after the database was back", time.Since(back).Round(100*time.Millisecond))
	if n := strings.Count(conv.out.String(), `"msg":"conversion started"`); n != 1 {
		t.Errorf("the video was converted %d times, want once", n)
	}
	c.checkOneMailPerJob(u, u.jobs())
}

// roundRobin is a small reverse proxy that sends each request to the next of targets.
func roundRobin(t *testing.T, targets []*proc) string {
	t.Helper()
	var next atomic.Uint64
	proxies := make([]*httputil.ReverseProxy, len(targets))
	for i, p := range targets {
		u, _ := url.Parse(p.url())
		proxies[i] = httputil.NewSingleHostReverseProxy(u)
		proxies[i].FlushInterval = -1 // event streams and long-polls pass at once
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxies[next.Add(1)%uint64(len(proxies))].ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s.URL
}

// TestLoadFiftyUsers: 50 users at once on the distributed services, two gateways behind a
// round-robin proxy and two converters: no errors, one MP3 per user. The latencies are logged,
// not asserted.
func TestLoadFiftyUsers(t *testing.T) {
	// 50 users from one IP: their registrations and logins must not be throttled.
	for _, k := range []string{"V2MD_REGISTER_IP_RATE", "V2MD_LOGIN_IP_RATE"} {
		t.Setenv(k, "off")
	}
	c := startClusterOn(t, sharedServers(t), 2, 2)
	front := roundRobin(t, c.gateways)
	tiny := testmedia.Good[1]
	src := media(t, tiny)
	const n = 50
	var (
		mu              sync.Mutex
		uploads, totals []time.Duration
		wg              sync.WaitGroup
	)
	out := t.TempDir()
	for i := range n {
		wg.Go(func() {
			u := newUser(t, front, fmt.Sprintf("load%d-%d@example.com", i, time.Now().UnixNano()))
			u.signup()
			t0 := time.Now()
			r := u.run("", "upload", src)
			if r.code != 0 {
				t.Errorf("user %d upload: %s", i, r)
				return
			}
			up := time.Since(t0)
			id := strings.TrimSpace(r.stdout)
			if r := u.run("", "wait", id); r.code != 0 {
				t.Errorf("user %d wait: %s", i, r)
				return
			}
			total := time.Since(t0)
			if r := u.run("", "download", id, "-o", filepath.Join(out, fmt.Sprintf("%d.mp3", i))); r.code != 0 {
				t.Errorf("user %d download: %s", i, r)
				return
			}
			mu.Lock()
			uploads, totals = append(uploads, up), append(totals, total)
			mu.Unlock()
		})
	}
	wg.Wait()
	t.Logf("50 users, 2 gateways, 2 converters: upload p50 %v p99 %v; job (upload to MP3) p50 %v p99 %v",
		quantile(uploads, 0.5).Round(time.Millisecond), quantile(uploads, 0.99).Round(time.Millisecond),
		quantile(totals, 0.5).Round(time.Millisecond), quantile(totals, 0.99).Round(time.Millisecond))
	if len(totals) != n {
		t.Fatalf("%d of %d users got their MP3", len(totals), n)
	}
}

// TestOutageConverterKilledDuringBrokerRestart: a converter is killed mid-job and RabbitMQ
// restarts right after; the other converter finishes the job once, with one mail.
func TestOutageConverterKilledDuringBrokerRestart(t *testing.T) {
	c, mq := clusterOnPrivate(t, "rabbitmq", 2)
	u := c.user("ann")
	id := strings.TrimSpace(u.must("", "upload", media(t, longSample)).stdout)
	var victim, survivor *proc
	waitUntil(t, 2*time.Minute, "a converter to start the job", func() bool {
		for i, p := range c.converters {
			if started(p.out.String(), id) {
				victim, survivor = p, c.converters[1-i]
				return true
			}
		}
		return false
	})
	victim.stop(syscall.SIGKILL)
	mq.stop()
	mq.start()
	back := time.Now()
	if r := u.run("", "wait", id, "--timeout", "4m"); r.code != 0 {
		t.Fatalf("wait: %s", r)
	}
	t.Logf("converter killed and broker restarted: the job was done %v after the broker was back", time.Since(back).Round(100*time.Millisecond))
	mp3 := filepath.Join(t.TempDir(), "after.mp3")
	u.must("", "download", id, "-o", mp3)
	checkMP3(t, mp3, longSample.AudioDuration)
	c.checkOneMailPerJob(u, u.jobs())
	if n := metric(t, survivor, "v2m_jobs_total", `state="done"`); n != 1 {
		t.Errorf("the surviving converter finished %v jobs, want 1", n)
	}
}
