package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testmedia"
)

// privateBroker starts a RabbitMQ of this test's own, on free ports and in a data dir of its
// own, with scripts/services.sh, and points the test's V2M_TEST_AMQP_URL and
// V2M_TEST_RABBITCTL at it: the test may stop it without disturbing the shared broker.
func privateBroker(t *testing.T) {
	t.Helper()
	testenv.Get(t, testenv.AMQPURL) // the shared broker's presence says RabbitMQ is installed
	if _, err := os.Stat("/usr/lib/rabbitmq/bin/rabbitmq-server"); err != nil {
		testenv.Missing(t, "rabbitmq-server is not installed: %v", err)
	}
	script, err := filepath.Abs("../scripts/services.sh")
	if err != nil {
		t.Fatal(err)
	}
	p := startPrivate(t, "rabbitmq")
	t.Setenv(testenv.AMQPURL, p.vars["V2M_TEST_AMQP_URL"])
	t.Setenv(testenv.RabbitCtl, script+" --data "+p.dir+" rabbitmq")
}

// ready reports whether p answers /readyz with 200.
func ready(p *proc) bool {
	resp, err := http.Get(p.url() + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestDistributedBrokerAway: with RabbitMQ stopped the gateway stays ready, accepts an upload
// and serves the download of a finished job; once the broker is back the sweeper publishes
// the job that is waiting and it is converted.
func TestDistributedBrokerAway(t *testing.T) {
	privateBroker(t)
	c := startCluster(t, 1, "--sweep-queued-after", "3s")
	u := c.user("ann")
	before := filepath.Join(t.TempDir(), "before.mp3")
	u.must("", "upload", media(t, testmedia.Good[0]), "--wait", "--timeout", "3m", "-o", before)
	first := u.jobs()[0].ID

	ctl := strings.Fields(c.rabbitctl)
	rabbit := func(verb string) {
		t.Helper()
		if out, err := exec.Command(ctl[0], append(ctl[1:], verb)...).CombinedOutput(); err != nil {
			t.Fatalf("rabbitmq %s: %v\n%s", verb, err, out)
		}
	}
	rabbit("stop")
	waitUntil(t, time.Minute, "the gateway to lose the broker", func() bool {
		return strings.Contains(c.gateway.out.String(), "rabbitmq connection lost")
	})
	if !ready(c.gateway) {
		t.Fatalf("the gateway is not ready without the broker:\n%s", tail(c.gateway.out.String(), 20))
	}
	r := u.must("", "upload", media(t, testmedia.Good[1]))
	second := strings.TrimSpace(r.stdout)
	// The upload is answered once its publish has waited a moment; the publish fails later.
	waitUntil(t, time.Minute, "the upload's publish to fail while the broker is away", func() bool {
		return strings.Contains(c.gateway.out.String(), "publish failed")
	})
	again := filepath.Join(t.TempDir(), "during.mp3")
	u.must("", "download", first, "-o", again)
	checkMP3(t, again, testmedia.Good[0].AudioDuration)
	for _, j := range u.jobs() {
		if j.ID == second && j.State != "queued" {
			t.Errorf("job %s is %s while the broker is away, want queued", j.ID, j.State)
		}
	}
	if !ready(c.gateway) {
		t.Fatalf("the gateway became unready without the broker:\n%s", tail(c.gateway.out.String(), 20))
	}

	rabbit("start")
	after := filepath.Join(t.TempDir(), "after.mp3")
	if r := u.run("", "wait", second, "--timeout", "3m"); r.code != 0 {
		t.Fatalf("wait for the job uploaded while the broker was away: %s\ngateway:\n%s", r, tail(c.gateway.out.String(), 20))
	}
	u.must("", "download", second, "-o", after)
	checkMP3(t, after, testmedia.Good[1].AudioDuration)
	if !ready(c.gateway) {
		t.Errorf("the gateway is not ready after the broker came back")
	}
	c.checkOneMailPerJob(u, u.jobs())
}
