package scripts

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestServicesRefusesClashingPorts: services.sh refuses, before it starts anything, ports that
// cannot work: one port for two servers, and ports that RabbitMQ takes for itself (epmd, its
// distribution port, and the rabbitmqctl CLI's distribution ports, 35672-35682 for the default
// broker), with which the broker could not start.
func TestServicesRefusesClashingPorts(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"RABBITMQ_PORT=35672"}, "35672-35682"},
		{[]string{"RABBITMQ_PORT=35682"}, "35672-35682"},
		{[]string{"RABBITMQ_PORT=5700", "RABBITMQ_DIST_PORT=35680"}, "35672-35682"},
		{[]string{"RABBITMQ_PORT=4369"}, "epmd"},
		{[]string{"RABBITMQ_PORT=5701", "RABBITMQ_DIST_PORT=5701"}, "RABBITMQ_DIST_PORT=5701 clashes with RABBITMQ_PORT"},
		{[]string{"RABBITMQ_PORT=5702", "MONGO_PORT=5702"}, "MONGO_PORT=5702 clashes with RABBITMQ_PORT"},
		{[]string{"RABBITMQ_PORT=5703", "SMTP_PORT=35710"}, "SMTP_PORT=35710 is in this broker's rabbitmqctl"},
		{[]string{"SERVICES=mailpit", "SMTP_PORT=1999", "MAILPIT_HTTP_PORT=1999"}, "MAILPIT_HTTP_PORT=1999 clashes with SMTP_PORT"},
		{[]string{"RABBITMQ_PORT=abc"}, "not a port"},
		{[]string{"SERVICES=mariadb", "MYSQL_PORT=70000"}, "not a port"},
	} {
		t.Run(strings.Join(tc.env, ","), func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), "bash", "services.sh", "--data", t.TempDir(), "up")
			cmd.Env = append(os.Environ(), tc.env...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want 2\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("output does not say %q:\n%s", tc.want, out)
			}
			if strings.Contains(string(out), "[services") {
				t.Fatalf("it went on after refusing:\n%s", out)
			}
		})
	}
}
