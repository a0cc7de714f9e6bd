package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/v2m/v2m/pkg/server/api"
	"github.com/v2m/v2m/pkg/server/metrics"
)

// run executes v2md with args and returns its error and stderr.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := NewCommand(&out, &errb)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String() + errb.String(), err
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "v2md.yaml")
	os.WriteFile(cfg, []byte("part-size: 1MiB\nmax-upload-size: 2GiB\nbitrate: 128k\n"), 0o600)
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	s := bind(cmd, uploadSettings, converterSettings)
	t.Setenv("V2MD_MAX_UPLOAD_SIZE", "3GiB")
	t.Setenv("V2MD_BITRATE", "96k")
	cmd.SetArgs([]string{"--config", cfg, "--bitrate", "192k"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if err := s.load(); err != nil {
		t.Fatal(err)
	}
	part, _ := s.size("part-size")
	max, _ := s.size("max-upload-size")
	if part != 1<<20 || max != 3<<30 || s.str("bitrate") != "192k" {
		t.Fatalf("file %d, env %d, flag %q: want 1MiB (file), 3GiB (env over file), 192k (flag over env)", part, max, s.str("bitrate"))
	}
	if s.dur("job-timeout") != 30*time.Minute {
		t.Fatalf("default job-timeout %v", s.dur("job-timeout"))
	}
}

func TestUnknownConfigKeyRefused(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "v2md.yaml")
	os.WriteFile(cfg, []byte("mongo-url: mongodb://x\n"), 0o600)
	_, err := run(t, "gateway", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), `unknown setting "mongo-url"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestSecretFromFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "uri")
	os.WriteFile(f, []byte("mongodb://secret-host/\n"), 0o600)
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	s := bind(cmd, mongoSettings)
	cmd.SetArgs([]string{"--mongo-uri", "mongodb://flag/", "--mongo-uri-file", f})
	cmd.Execute()
	if v, err := s.secret("mongo-uri"); err != nil || v != "mongodb://secret-host/" {
		t.Fatalf("secret = %q, %v", v, err)
	}
	cmd.SetArgs([]string{"--mongo-uri-file", f + ".missing"})
	cmd.Execute()
	if _, err := s.secret("mongo-uri"); err == nil {
		t.Fatal("missing secret file accepted")
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{8 << 20: "8MiB", 4 << 30: "4GiB", 128 << 10: "128KiB", 1000: "1000", 3 << 19: "1536KiB"} {
		got := formatSize(n)
		if got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
		if back, err := parseSize("x", got); err != nil || back != n {
			t.Errorf("parseSize(formatSize(%d)) = %d, %v", n, back, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"131072": 131072, "128KiB": 128 << 10, "8MiB": 8 << 20, "4GiB": 4 << 30, "8M": 8 << 20, "1 GiB": 1 << 30} {
		if got, err := parseSize("x", in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "0", "-1", "lots", "1.5GiB", "8XB"} {
		if _, err := parseSize("x", bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestRequiredSettings(t *testing.T) {
	for cmd, want := range map[string][]string{
		"auth":    {"--mysql-dsn"},
		"gateway": {"--auth-url", "--mongo-uri", "--amqp-url"},
		"convert": {"--mongo-uri", "--amqp-url"},
		"notify":  {"--mongo-uri", "--amqp-url", "--smtp-addr"},
	} {
		_, err := run(t, cmd)
		if err == nil {
			t.Fatalf("%s started without settings", cmd)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v does not name %s", cmd, err, w)
			}
		}
	}
}

func TestBadSettingsRefused(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no ffmpeg
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"standalone", "--data", t.TempDir()}, "apt-get install ffmpeg"},
		{[]string{"standalone", "--part-size", "big"}, "--part-size"},
		{[]string{"standalone", "--log-format", "xml"}, "--log-format"},
		{[]string{"standalone", "--read-timeout", "-1s"}, "--read-timeout must not be negative"},
		{[]string{"standalone", "--min-transfer-rate", "-5"}, "--min-transfer-rate must not be negative"},
		{[]string{"standalone", "--encode-threads", "-1"}, "--encode-threads must be 0"},
		{[]string{"convert", "--mongo-uri", "m", "--amqp-url", "a", "--encode-threads", "-2"}, "--encode-threads must be 0"},
		{[]string{"auth", "--mysql-dsn", "u:p@tcp(127.0.0.1:1)/x"}, "--jwt-key-file is required"},
		{[]string{"auth", "--mysql-dsn", "x", "--jwt-alg", "RS256", "--jwt-key-file", "k"}, "--jwt-alg"},
		{[]string{"gateway", "--auth-url", "http://a", "--mongo-uri", "m", "--amqp-url", "a", "--part-size", "1MiB", "--gridfs-chunk-size", "300KiB"}, "must divide"},
		{[]string{"gateway", "--auth-url", "http://a", "--mongo-uri", "m", "--amqp-url", "a", "--sweep-stale-after", "10s"}, "--sweep-stale-after 10s is too short"},
		{[]string{"convert", "--mongo-uri", "m", "--amqp-url", "a", "--stale-after", "5s"}, "--stale-after 5s is too short"},
		{[]string{"convert", "--mongo-uri-file", "/nonexistent/uri", "--amqp-url", "a"}, "--mongo-uri-file: open /nonexistent/uri: no such file"},
		{[]string{"notify", "--mongo-uri", "m", "--amqp-url", "a", "--smtp-addr", "s:25", "--amqp-queue-type", "stream"}, "--amqp-queue-type must be classic or quorum"},
		{[]string{"gateway", "--auth-url", "http://a", "--mongo-uri", "m", "--amqp-url", "a", "--amqp-queue-type", "Quorum"}, "--amqp-queue-type must be classic or quorum"},
		{[]string{"standalone", "--data", "d", "--tmp-dir", "d/tmp"}, "inside --data"},
	} {
		_, err := run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
		// A value the operator must fix exits 2, like a command line that does not parse; a
		// missing program or file is the machine's trouble (1).
		want := 2
		if strings.Contains(tc.want, "ffmpeg") || strings.Contains(tc.want, "no such file") {
			want = 1
		}
		if got := ExitCode(err); got != want {
			t.Errorf("%v: exit code %d, want %d", tc.args, got, want)
		}
	}
	for _, args := range [][]string{{"standalone", "--no-such-flag"}, {"standalone", "--concurrency", "many"}} {
		if _, err := run(t, args...); ExitCode(err) != 2 {
			t.Errorf("%v: exit code %d (%v), want 2", args, ExitCode(err), err)
		}
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key.pem")
	if out, err := run(t, "keygen", "-o", key); err != nil || !strings.Contains(out, "kid") {
		t.Fatalf("keygen: %v %s", err, out)
	}
	if st, _ := os.Stat(key); st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", st.Mode())
	}
	if _, err := run(t, "keygen", "-o", key); err == nil {
		t.Fatal("keygen replaced a key without --force")
	}
	old := filepath.Join(dir, "old.pem")
	run(t, "keygen", "-o", old)
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	s := bind(cmd, jwtAlgSettings, []setting{{"jwt-verify-key-files", []string{}, ""}})
	cmd.SetArgs([]string{"--jwt-key-file", key, "--jwt-verify-key-files", old})
	cmd.Execute()
	k, all, err := loadKeys(s)
	if err != nil || len(all) != 2 || k.Private == nil || all[1].Private != nil {
		t.Fatalf("loadKeys: %v, %d keys", err, len(all))
	}
	secret := filepath.Join(dir, "hs")
	os.WriteFile(secret, []byte("too short"), 0o600)
	cmd.SetArgs([]string{"--jwt-alg", "HS256", "--jwt-key-file", secret})
	cmd.Execute()
	if _, _, err := loadKeys(s); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("short HS256 secret: %v", err)
	}
}

// TestDescribeMatchesFlags: describe lists exactly the flags each command has, with the env
// names viper reads, so that deployment checks can rely on it.
func TestDescribeMatchesFlags(t *testing.T) {
	out, err := run(t, "describe")
	if err != nil {
		t.Fatal(err)
	}
	var d Description
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	root := NewCommand(&bytes.Buffer{}, &bytes.Buffer{})
	if len(d.Subcommands) != 5 {
		t.Fatalf("%d subcommands described", len(d.Subcommands))
	}
	for _, sc := range d.Subcommands {
		cmd, _, err := root.Find([]string{sc.Name})
		if err != nil {
			t.Fatal(err)
		}
		described := map[string]bool{}
		for _, st := range sc.Settings {
			described[st.Name] = true
			if st.Env != "V2MD_"+strings.ToUpper(strings.ReplaceAll(st.Name, "-", "_")) {
				t.Errorf("%s %s: env %s", sc.Name, st.Name, st.Env)
			}
		}
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" && !described[f.Name] {
				t.Errorf("%s --%s is not described", sc.Name, f.Name)
			}
			delete(described, f.Name)
		})
		for name := range described {
			t.Errorf("%s: described setting %s has no flag", sc.Name, name)
		}
		if strings.Join(sc.HTTPPaths, " ") != "/healthz /readyz" {
			t.Errorf("%s paths %v", sc.Name, sc.HTTPPaths)
		}
	}
}

func TestDrainGivesRunningWorkGrace(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	work, stop := drain(ctx, 100*time.Millisecond)
	defer stop()
	cancel()
	select {
	case <-work.Done():
		t.Fatal("work stopped with the consumer, without grace")
	case <-time.After(30 * time.Millisecond):
	}
	select {
	case <-work.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("work not stopped after the grace period")
	}
}

func TestTmpDirOutsideData(t *testing.T) {
	data := t.TempDir()
	for _, tc := range []struct {
		tmp string
		ok  bool
	}{
		{"", true},
		{t.TempDir(), true},
		{data, false},
		{filepath.Join(data, "tmp"), false},
		{filepath.Join(data, "..", filepath.Base(data), "blobs"), false},
		{data + "-tmp", true},
	} {
		if err := outside(tc.tmp, data); (err == nil) != tc.ok {
			t.Errorf("outside(%q, %q) = %v, want ok=%v", tc.tmp, data, err, tc.ok)
		}
	}
}

// TestMetricsOnlyOnMetricsAddr: /metrics answers on the metrics listener only; the API's
// port answers 404 for it and keeps /healthz and /readyz, for the kubelet's probes.
func TestMetricsOnlyOnMetricsAddr(t *testing.T) {
	m := metrics.New()
	h := api.New(api.Config{Metrics: m})
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveOn(ctx, slog.New(slog.DiscardHandler), apiLn, metricsLn, h, m, api.Limits{}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	get := func(ln net.Listener, path string) (int, string) {
		t.Helper()
		res, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _ := get(apiLn, p); code != 200 {
			t.Errorf("API port %s: %d", p, code)
		}
	}
	if code, _ := get(apiLn, "/metrics"); code != 404 {
		t.Errorf("API port /metrics: %d, want 404", code)
	}
	if code, body := get(metricsLn, "/metrics"); code != 200 || !strings.Contains(body, "v2m_http_requests_total") {
		t.Errorf("metrics port /metrics: %d %.300s", code, body)
	}
	if code, _ := get(metricsLn, "/v1/jobs"); code != 404 {
		t.Errorf("metrics port serves the API: %d", code)
	}
}

// TestMetricsAddrDefaults: every service has --metrics-addr on loopback, on ports that do not
// collide with one another, and an empty value is accepted (no metrics).
func TestMetricsAddrDefaults(t *testing.T) {
	seen := map[string]string{}
	for _, sc := range Describe(&bytes.Buffer{}).Subcommands {
		var def string
		for _, st := range sc.Settings {
			if st.Name == "metrics-addr" {
				def = st.Default
			}
		}
		if !strings.HasPrefix(def, "127.0.0.1:") {
			t.Errorf("%s --metrics-addr default %q is not on loopback", sc.Name, def)
		}
		if other, ok := seen[def]; ok {
			t.Errorf("%s and %s both default to --metrics-addr %s", sc.Name, other, def)
		}
		seen[def] = sc.Name
	}
}
