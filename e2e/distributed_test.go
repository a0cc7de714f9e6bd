package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testmedia"
	"github.com/v2m/v2m/pkg/server"
)

// cluster is the distributed services as separate processes.
type cluster struct {
	t          *testing.T
	gateway    *proc
	gateways   []*proc // gateway among them
	converters []*proc
	notify     *proc
	mailpit    string
	rabbitctl  string
	env        []string
	tmp        string // the converters' --tmp-dir
	auth       *proc
	authArgs   []string // auth's command line, to start it again
}

// clusterConfig is what startClusterWith varies: the servers default to the shared ones.
type clusterConfig struct {
	converters  int
	gatewayArgs []string
	mysqlDSN    string // a private MariaDB's; the shared one when empty
	mongoURI    string // a private FerretDB's; the shared one when empty
}

// startCluster starts auth, a gateway (with gatewayArgs added to its flags), converters and
// notify on the real servers.
func startCluster(t *testing.T, converters int, gatewayArgs ...string) *cluster {
	t.Helper()
	return startClusterWith(t, clusterConfig{converters: converters, gatewayArgs: gatewayArgs})
}

// startClusterWith is startCluster on the servers cfg names, the shared ones otherwise.
func startClusterWith(t *testing.T, cfg clusterConfig) *cluster {
	t.Helper()
	srv := sharedServers(t)
	if cfg.mysqlDSN != "" {
		srv.dsn = cfg.mysqlDSN
	}
	if cfg.mongoURI != "" {
		srv.mongoURI = cfg.mongoURI
	}
	return startClusterOn(t, srv, 1, cfg.converters, cfg.gatewayArgs...)
}

// servers are the addresses of the servers a cluster runs on.
type servers struct{ dsn, mongoURI, amqpURL, smtpAddr, mailpitAPI string }

// sharedServers are the test servers of the environment (internal/testenv).
func sharedServers(t *testing.T) servers {
	return servers{dsn: testenv.Get(t, testenv.MySQLDSN), mongoURI: testenv.Get(t, testenv.MongoURI),
		amqpURL: testenv.Get(t, testenv.AMQPURL), smtpAddr: testenv.Get(t, testenv.SMTPAddr), mailpitAPI: testenv.Get(t, testenv.MailpitAPI)}
}

// startClusterOn is startCluster on srv, with the given number of gateways (c.gateway is the
// first of c.gateways).
func startClusterOn(t *testing.T, srv servers, gateways, converters int, gatewayArgs ...string) *cluster {
	t.Helper()
	testenv.Tool(t, "ffmpeg")
	dsn, mongoURI, amqpURL, smtpAddr := srv.dsn, srv.mongoURI, srv.amqpURL, srv.smtpAddr
	c := &cluster{t: t, mailpit: srv.mailpitAPI, rabbitctl: os.Getenv(testenv.RabbitCtl)}
	_, v2md := binaries(t)
	dir := t.TempDir()
	c.tmp = dir
	key := filepath.Join(dir, "jwt.pem")
	if out, err := exec.Command(v2md, "keygen", "-o", key).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v %s", err, out)
	}
	secrets := filepath.Join(dir, "mongo-uri")
	os.WriteFile(secrets, []byte(mongoURI+"\n"), 0o600) // the way a Kubernetes secret mount gives it
	db := "e2e_" + server.NewID()[:12]
	t.Cleanup(func() { dropMongoDB(t, mongoURI, db) })
	c.env = []string{"V2MD_MONGO_URI_FILE=" + secrets, "V2MD_MONGO_DB=" + db, "V2MD_AMQP_URL=" + amqpURL, "V2MD_LOG_FORMAT=json"}

	authAddr := freeAddr(t)
	c.authArgs = []string{"auth", "--listen", authAddr, "--mysql-dsn", dsn, "--jwt-key-file", key, "--bcrypt-cost", "4"}
	c.auth = start(t, "auth", authAddr, c.env, c.authArgs...)
	for i := range max(gateways, 1) {
		gwAddr := freeAddr(t)
		c.gateways = append(c.gateways, start(t, fmt.Sprintf("gateway-%d", i+1), gwAddr, c.env, append([]string{"gateway", "--listen", gwAddr, "--auth-url", "http://" + authAddr,
			"--part-size", "1MiB", "--sweep-interval", "1s", "--sweep-stale-after", "20s"}, gatewayArgs...)...))
	}
	c.gateway = c.gateways[0]
	for i := range converters {
		addr := freeAddr(t)
		c.converters = append(c.converters, start(t, fmt.Sprintf("convert-%d", i+1), addr, c.env, "convert", "--listen", addr,
			"--concurrency", "1", "--stale-after", "20s", "--tmp-dir", dir))
	}
	nAddr := freeAddr(t)
	c.notify = start(t, "notify", nAddr, c.env, "notify", "--listen", nAddr, "--smtp-addr", smtpAddr,
		"--public-url", c.gateway.url())
	waitUntil(t, time.Minute, "the gateway to be ready", func() bool {
		resp, err := http.Get(c.gateway.url() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return c
}

func dropMongoDB(t *testing.T, uri, db string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Logf("drop %s: %v", db, err)
		return
	}
	defer client.Disconnect(ctx)
	if err := client.Database(db).Drop(ctx); err != nil {
		t.Logf("drop %s: %v", db, err)
	}
}

// started reports whether a converter's JSON log says it started converting job id.
func started(log, id string) bool {
	for _, line := range strings.Split(log, "\n") {
		var rec struct {
			JobID string `json:"job_id"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.JobID == id && strings.Contains(line, `"msg":"conversion started"`) {
			return true
		}
	}
	return false
}

func (c *cluster) user(name string) *user {
	u := newUser(c.t, c.gateway.url(), fmt.Sprintf("%s-%s@example.com", name, server.NewID()[:8]))
	u.signup()
	return u
}

// metric sums the values of a metric (with a label filter like `state="done"`) on a process,
// read from its metrics listener.
func metric(t *testing.T, p *proc, name, label string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (label != "" && !strings.Contains(line, label)) {
			continue
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		sum += v
	}
	return sum
}

type mailMsg struct {
	ID      string
	Subject string
	Text    string
}

// mails returns the mails Mailpit holds for to.
func (c *cluster) mails(to string) []mailMsg {
	c.t.Helper()
	resp, err := http.Get(c.mailpit + "/api/v1/search?limit=200&query=" + url.QueryEscape(`to:"`+to+`"`))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct{ Messages []mailMsg }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		c.t.Fatal(err)
	}
	for i := range list.Messages {
		r, err := http.Get(c.mailpit + "/api/v1/message/" + list.Messages[i].ID)
		if err != nil {
			c.t.Fatal(err)
		}
		var m mailMsg
		json.NewDecoder(r.Body).Decode(&m)
		r.Body.Close()
		list.Messages[i].Text = m.Text
	}
	return list.Messages
}

// checkOneMailPerJob waits for one mail per job and checks that no second one follows.
func (c *cluster) checkOneMailPerJob(u *user, jobs []job) {
	c.t.Helper()
	waitUntil(c.t, time.Minute, "one mail per job", func() bool { return len(c.mails(u.email)) >= len(jobs) })
	time.Sleep(2 * time.Second) // a duplicate would arrive in this time
	mails := c.mails(u.email)
	if len(mails) != len(jobs) {
		c.t.Fatalf("%d mails for %d jobs", len(mails), len(jobs))
	}
	for _, j := range jobs {
		want := j.MP3FID
		if j.State == "failed" {
			want = j.ID
		}
		n := 0
		for _, m := range mails {
			if strings.Contains(m.Text, want) {
				n++
			}
		}
		if n != 1 {
			c.t.Errorf("job %s (%s): %d mails name %s", j.ID, j.State, n, want)
		}
	}
}

// uploadAll uploads the samples in parallel with --wait -o and returns the MP3 paths.
func uploadAll(t *testing.T, u *user, samples []testmedia.Sample, out string) []string {
	t.Helper()
	paths := make([]string, len(samples))
	var wg sync.WaitGroup
	for i, s := range samples {
		src := media(t, s)
		paths[i] = filepath.Join(out, fmt.Sprintf("%d-%s.mp3", i, s.Name))
		wg.Go(func() {
			if r := u.run("", "upload", src, "--wait", "--timeout", "5m", "-o", paths[i]); r.code != 0 {
				t.Errorf("upload %s: %s", s.File(), r)
			}
		})
	}
	wg.Wait()
	return paths
}

// TestDistributed runs the services as separate processes with two converters: five videos
// uploaded at once become valid MP3s, with exactly one mail each, and both converters work.
func TestDistributed(t *testing.T) {
	c := startCluster(t, 2)
	u := c.user("ann")
	samples := testmedia.Good[:5]
	paths := uploadAll(t, u, samples, t.TempDir())
	if t.Failed() {
		return
	}
	for i, s := range samples {
		checkMP3(t, paths[i], s.AudioDuration)
	}
	jobs := u.jobs()
	if len(jobs) != 5 {
		t.Fatalf("%d jobs", len(jobs))
	}
	c.checkOneMailPerJob(u, jobs)
	for _, p := range c.converters {
		if n := metric(t, p, "v2m_jobs_total", `state="done"`); n == 0 {
			t.Errorf("%s converted nothing", p.name)
		}
	}
	// Someone else gets 404 for these jobs and files.
	bob := c.user("bob")
	if r := bob.run("", "download", jobs[0].MP3FID, "-o", filepath.Join(t.TempDir(), "x.mp3")); r.code != 4 {
		t.Errorf("bob downloads ann's file: %s", r)
	}
}

// TestDistributedBrokerRestart: RabbitMQ restarts while jobs are in flight; nothing is lost.
func TestDistributedBrokerRestart(t *testing.T) {
	c := startCluster(t, 2)
	if c.rabbitctl == "" {
		testenv.Missing(t, "%s is not set", testenv.RabbitCtl)
	}
	u := c.user("ann")
	var wg sync.WaitGroup
	var paths []string
	wg.Go(func() { paths = uploadAll(t, u, testmedia.Good[:3], t.TempDir()) })
	time.Sleep(300 * time.Millisecond)
	ctl := strings.Fields(c.rabbitctl)
	for _, verb := range []string{"stop", "start"} {
		if out, err := exec.Command(ctl[0], append(ctl[1:], verb)...).CombinedOutput(); err != nil {
			t.Fatalf("rabbitmq %s: %v\n%s", verb, err, out)
		}
	}
	more := uploadAll(t, u, testmedia.Good[3:5], t.TempDir()) // after the restart
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, p := range append(paths, more...) {
		checkMP3(t, p, testmedia.Good[i].AudioDuration)
	}
	jobs := u.jobs()
	if len(jobs) != 5 {
		t.Fatalf("%d jobs", len(jobs))
	}
	c.checkOneMailPerJob(u, jobs)
}

// longSample takes a few seconds to convert, long enough to kill a converter mid-job.
var longSample = testmedia.Sample{Name: "pcm-10min", Container: "mkv", Duration: 10 * time.Minute, Width: 16, Height: 16, Rate: 1,
	Video: []string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"},
	Audio: []string{"-c:a", "pcm_s16le", "-ac", "1"}, AudioDuration: 10 * time.Minute}

// TestDistributedConverterKilled: a converter killed with SIGKILL mid-job; the job is delivered
// again and finishes exactly once: one MP3, one mail.
func TestDistributedConverterKilled(t *testing.T) {
	c := startCluster(t, 2)
	u := c.user("ann")
	r := u.must("", "upload", media(t, longSample))
	id := strings.TrimSpace(r.stdout)
	var victim *proc
	waitUntil(t, 2*time.Minute, "a converter to start the job", func() bool {
		for _, p := range c.converters {
			if started(p.out.String(), id) {
				victim = p
				return true
			}
		}
		return false
	})
	// The victim's ffmpeg, in its work dir (the converters share --tmp-dir).
	var workDir string
	waitUntil(t, time.Minute, "the victim's ffmpeg to run", func() bool {
		for _, pid := range processesIn(c.tmp) {
			if parentOf(pid) == victim.cmd.Process.Pid {
				workDir, _ = os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
				return workDir != ""
			}
		}
		return false
	})
	victim.stop(syscall.SIGKILL)
	waitUntil(t, 10*time.Second, "the victim's ffmpeg to die with it", func() bool {
		for _, pid := range processesIn(c.tmp) {
			if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); cwd == workDir {
				return false
			}
		}
		return true
	})
	mp3 := filepath.Join(t.TempDir(), "after-kill.mp3")
	if r := u.run("", "wait", id, "--timeout", "4m"); r.code != 0 {
		t.Fatalf("wait: %s", r)
	}
	u.must("", "download", id, "-o", mp3)
	checkMP3(t, mp3, longSample.AudioDuration)
	jobs := u.jobs()
	c.checkOneMailPerJob(u, jobs)
	var survivor *proc
	for _, p := range c.converters {
		if p != victim {
			survivor = p
		}
	}
	if n := metric(t, survivor, "v2m_jobs_total", `state="done"`); n != 1 {
		t.Fatalf("the surviving converter finished %v jobs, want 1", n)
	}
	// The victim's work dir (with the user's audio) stays until a converter starts on that
	// machine again, and then goes.
	if _, err := os.Stat(workDir); err != nil {
		t.Fatalf("the killed converter's work dir %s is gone before any restart: %v", workDir, err)
	}
	addr := freeAddr(t)
	start(t, "convert-restarted", addr, c.env, "convert", "--listen", addr, "--concurrency", "1", "--stale-after", "20s", "--tmp-dir", c.tmp)
	if _, err := os.Stat(workDir); !os.IsNotExist(err) {
		t.Errorf("the killed converter's work dir is still there after a converter started: %v", err)
	}
}

// parentOf returns the parent pid of pid, or 0.
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// TestDistributedCorruptVideo: a corrupt video fails its job with a reason and a mail, the
// queue keeps flowing, and nothing is retried forever.
func TestDistributedCorruptVideo(t *testing.T) {
	c := startCluster(t, 1)
	u := c.user("ann")
	var corrupt testmedia.Sample
	for _, s := range testmedia.Bad {
		if s.Name == "corrupt" {
			corrupt = s
		}
	}
	r := u.run("", "upload", media(t, corrupt), "--wait", "--timeout", "3m")
	if r.code != 5 || !strings.Contains(r.stderr, corrupt.WantErr) {
		t.Fatalf("corrupt upload: %s", r)
	}
	u.must("", "convert", media(t, testmedia.Good[1]), "-o", filepath.Join(t.TempDir(), "ok.mp3"))
	jobs := u.jobs()
	c.checkOneMailPerJob(u, jobs)
	var failMail bool
	for _, m := range c.mails(u.email) {
		failMail = failMail || (strings.Contains(m.Subject, "failed") && strings.Contains(m.Text, "could not be converted"))
	}
	if !failMail {
		t.Error("no failure mail with the reason")
	}
	if n := metric(t, c.converters[0], "v2m_jobs_total", `state="converting"`); n != 2 {
		t.Errorf("converter started %v conversions for 2 jobs: something was retried", n)
	}
}
