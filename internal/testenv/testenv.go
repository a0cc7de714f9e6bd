// Package testenv tells tests where the real servers they need are, and decides what happens
// when one is missing: skip on a developer's machine, fail under CI=true.
package testenv

import (
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The variables that scripts/test.sh exports after scripts/services.sh has started the servers.
const (
	MySQLDSN   = "V2M_TEST_MYSQL_DSN"   // user:pass@tcp(127.0.0.1:3306)/auth?parseTime=true
	MongoURI   = "V2M_TEST_MONGO_URI"   // mongodb://127.0.0.1:27017/
	AMQPURL    = "V2M_TEST_AMQP_URL"    // amqp://guest:guest@127.0.0.1:5672/
	SMTPAddr   = "V2M_TEST_SMTP_ADDR"   // 127.0.0.1:1025
	MailpitAPI = "V2M_TEST_MAILPIT_API" // http://127.0.0.1:8025
	// RabbitCtl is a command line that controls the test broker, e.g. "scripts/services.sh
	// rabbitmq"; tests that restart the broker run "$V2M_TEST_RABBITCTL stop|start".
	RabbitCtl = "V2M_TEST_RABBITCTL"
)

// CI reports whether tests run under CI, where a missing server is a failure.
func CI() bool { return os.Getenv("CI") == "true" }

// Missing ends the test: Fatal under CI, Skip elsewhere.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if CI() {
		t.Fatalf("CI=true and a required server or tool is missing: "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}

// Get returns the value of the variable name, and checks that the server behind it accepts
// TCP connections. When either fails, the test is skipped, or failed under CI=true.
func Get(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Missing(t, "%s is not set (run the tests through scripts/test.sh)", name)
		return ""
	}
	if addr := hostPort(v); addr != "" {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			Missing(t, "%s=%s: %v", name, v, err)
			return ""
		}
		c.Close()
	}
	return v
}

// Tool returns the path of an executable, skipping or failing the test when it is absent.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not found in PATH", name)
	}
	return p
}

// hostPort digs the TCP address out of the shapes the variables take.
func hostPort(v string) string {
	if strings.Contains(v, "://") {
		u, err := url.Parse(v)
		if err != nil {
			return ""
		}
		h := u.Host
		if i := strings.LastIndex(h, "@"); i >= 0 {
			h = h[i+1:]
		}
		if i := strings.Index(h, ","); i >= 0 { // mongodb://a,b/
			h = h[:i]
		}
		return h
	}
	if i, j := strings.Index(v, "tcp("), strings.Index(v, ")"); i >= 0 && j > i { // MySQL DSN
		return v[i+4 : j]
	}
	if _, _, err := net.SplitHostPort(v); err == nil {
		return v
	}
	return ""
}
