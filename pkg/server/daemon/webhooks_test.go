package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestWebhookAllowPrivate: --webhook-allow-private reads true and false from a flag, the
// environment or the config file, and a value that is neither stops each service that has it
// before it connects to anything (viper alone would read it as false).
func TestWebhookAllowPrivate(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "v2md.yaml")
	if err := os.WriteFile(cfg, []byte("webhook-allow-private: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  string
		args []string
		want bool
	}{
		{"", nil, false},
		{"", []string{"--webhook-allow-private"}, true},
		{"", []string{"--webhook-allow-private=false"}, false},
		{"true", nil, true},
		{"1", nil, true},
		{"", []string{"--config", cfg}, true},
		{"false", []string{"--config", cfg}, false}, // the environment over the file
	} {
		cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
		s := bind(cmd, webhookSettings)
		t.Setenv("V2MD_WEBHOOK_ALLOW_PRIVATE", tc.env)
		if tc.env == "" {
			os.Unsetenv("V2MD_WEBHOOK_ALLOW_PRIVATE")
		}
		cmd.SetArgs(tc.args)
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		if err := s.load(); err != nil {
			t.Fatal(err)
		}
		if got, err := s.flag("webhook-allow-private"); err != nil || got != tc.want {
			t.Errorf("env %q, args %v: %v, %v; want %v", tc.env, tc.args, got, err, tc.want)
		}
	}

	t.Setenv("V2MD_WEBHOOK_ALLOW_PRIVATE", "maybe")
	for _, args := range [][]string{
		{"standalone", "--data", t.TempDir()},
		// Nothing listens on these: the setting must be refused before they are dialled.
		{"gateway", "--auth-url", "http://127.0.0.1:1", "--mongo-uri", "mongodb://127.0.0.1:1/", "--amqp-url", "amqp://127.0.0.1:1/"},
		{"notify", "--mongo-uri", "mongodb://127.0.0.1:1/", "--amqp-url", "amqp://127.0.0.1:1/", "--smtp-addr", "127.0.0.1:1"},
	} {
		_, err := run(t, args...)
		if err == nil || !strings.Contains(err.Error(), `--webhook-allow-private must be true or false, not "maybe"`) || ExitCode(err) != 2 {
			t.Errorf("%s: %v (exit %d), want exit 2 naming --webhook-allow-private", args[0], err, ExitCode(err))
		}
	}
}
