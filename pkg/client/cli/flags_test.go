package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
)

// These tests build one command at a time with a runF that captures its options, run the
// argument parsing through the root command and execute (so that global flags and exit codes
// are the real ones), and never talk to a server.

// testEnv is the outside world of one parse: environment variables and whether stdin is a
// terminal.
type testEnv struct {
	vars   map[string]string
	tty    bool
	ttyOut bool // stdout is a terminal
	deps   Deps // NewClient and TokenStore, when a test needs them
}

type parsed[O any] struct {
	opts   *O // nil when runF was not called
	code   int
	stderr string
	f      *factory
	// userDir stands in for os.UserConfigDir.
	userDir string
}

// parse runs args (the command's name first, as on the command line) with the command newCmd
// builds. Without V2M_CONFIG_DIR in env.vars the config dir is an empty temporary directory.
func parse[O any](t *testing.T, env testEnv, newCmd func(*factory, func(*O) error) *cobra.Command, args ...string) parsed[O] {
	t.Helper()
	vars := map[string]string{"V2M_CONFIG_DIR": t.TempDir()}
	for k, v := range env.vars {
		vars[k] = v
	}
	var stdout, stderr bytes.Buffer
	d := env.deps
	d.Stdout, d.Stderr, d.Stdin = &stdout, &stderr, strings.NewReader("")
	d.Getenv = func(k string) string { return vars[k] }
	d.StdinIsTTY, d.StdoutIsTTY = env.tty, env.ttyOut
	d.ReadPassword = func(context.Context) ([]byte, error) { return nil, errors.New("no password in this test") }
	f := newFactory(d)
	userDir := t.TempDir()
	f.userConfigDir = func() (string, error) { return userDir, nil }
	var got *O
	cmd := newCmd(f, func(o *O) error {
		got = o
		return nil
	})
	code := execute(context.Background(), f, rootWith(f, cmd), args)
	return parsed[O]{opts: got, code: code, stderr: stderr.String(), f: f, userDir: userDir}
}

// wantUsage checks that p is a usage error mentioning msg, reported before the command ran.
func wantUsage[O any](t *testing.T, p parsed[O], msg string) {
	t.Helper()
	if p.code != ExitUsage {
		t.Fatalf("exit %d, want %d (usage); stderr %q", p.code, ExitUsage, p.stderr)
	}
	if p.opts != nil {
		t.Fatalf("runF called despite the usage error: %+v", *p.opts)
	}
	if !strings.Contains(p.stderr, msg) || !strings.HasSuffix(p.stderr, "(see 'v2m --help')\n") {
		t.Fatalf("stderr %q, want %q and a pointer to --help", p.stderr, msg)
	}
}

func wantOK[O any](t *testing.T, p parsed[O]) *O {
	t.Helper()
	if p.code != ExitOK || p.opts == nil {
		t.Fatalf("exit %d, runF called: %v; stderr %q", p.code, p.opts != nil, p.stderr)
	}
	return p.opts
}

func TestUploadFlags(t *testing.T) {
	type want struct {
		File     string
		Wait     bool
		Output   string
		Parallel int
		Timeout  time.Duration
		JSON     bool
	}
	for _, tc := range []struct {
		name string
		args string
		want want
	}{
		{"defaults", "upload talk.mp4", want{File: "talk.mp4", Parallel: client.DefaultParallel, Timeout: DefaultWaitTimeout}},
		{"wait", "upload talk.mp4 --wait --timeout 30s", want{File: "talk.mp4", Wait: true, Parallel: 4, Timeout: 30 * time.Second}},
		{"output implies wait", "upload talk.mp4 -o out.mp3", want{File: "talk.mp4", Wait: true, Output: "out.mp3", Parallel: 4, Timeout: DefaultWaitTimeout}},
		{"long output flag", "upload --output=out.mp3 talk.mp4", want{File: "talk.mp4", Wait: true, Output: "out.mp3", Parallel: 4, Timeout: DefaultWaitTimeout}},
		{"parallel bounds", "upload talk.mp4 --parallel 64", want{File: "talk.mp4", Parallel: 64, Timeout: DefaultWaitTimeout}},
		{"parallel one", "upload talk.mp4 --parallel=1", want{File: "talk.mp4", Parallel: 1, Timeout: DefaultWaitTimeout}},
		{"no time limit", "upload talk.mp4 --wait --timeout 0", want{File: "talk.mp4", Wait: true, Parallel: 4}},
		{"json after the verb", "upload talk.mp4 --json", want{File: "talk.mp4", Parallel: 4, Timeout: DefaultWaitTimeout, JSON: true}},
		{"json before the verb", "--json upload talk.mp4", want{File: "talk.mp4", Parallel: 4, Timeout: DefaultWaitTimeout, JSON: true}},
		{"dash file after --", "upload -- -talk.mp4", want{File: "-talk.mp4", Parallel: 4, Timeout: DefaultWaitTimeout}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := wantOK(t, parse(t, testEnv{}, newCmdUpload, strings.Fields(tc.args)...))
			got := want{File: strings.Join(o.Files, " "), Wait: o.Wait, Output: o.Output.Path, Parallel: o.Send.Parallel, Timeout: o.Timeout, JSON: o.JSON}
			if got != tc.want {
				t.Fatalf("%q parsed as %+v, want %+v", tc.args, got, tc.want)
			}
		})
	}
}

func TestConvertFlags(t *testing.T) {
	type want struct {
		File, Output string
		Parallel     int
		Timeout      time.Duration
	}
	for _, tc := range []struct {
		name string
		args string
		want want
	}{
		{"default output in the working directory", "convert /videos/talk.mp4", want{"/videos/talk.mp4", "talk.mp3", 4, DefaultWaitTimeout}},
		{"no extension", "convert talk", want{"talk", "talk.mp3", 4, DefaultWaitTimeout}},
		{"output", "convert talk.mp4 -o /no-such-dir/x.mp3 --parallel 2 --timeout 1h", want{"talk.mp4", "/no-such-dir/x.mp3", 2, time.Hour}},
		{"several", "convert a.mp4 /videos/b.mkv -o /no-such-dir/", want{"a.mp4 /videos/b.mkv", "/no-such-dir/a.mp3 /no-such-dir/b.mp3", 4, DefaultWaitTimeout}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := wantOK(t, parse(t, testEnv{}, newCmdConvert, strings.Fields(tc.args)...))
			if got := (want{strings.Join(o.Files, " "), strings.Join(o.Targets, " "), o.Send.Parallel, o.Timeout}); got != tc.want {
				t.Fatalf("%q parsed as %+v, want %+v", tc.args, got, tc.want)
			}
		})
	}
}

func TestWaitStatusDownloadFlags(t *testing.T) {
	t.Run("wait", func(t *testing.T) {
		o := wantOK(t, parse(t, testEnv{}, newCmdWait, "wait", "J1"))
		if o.JobID != "J1" || o.Timeout != DefaultWaitTimeout || o.JSON {
			t.Fatalf("%+v", *o)
		}
		o = wantOK(t, parse(t, testEnv{}, newCmdWait, "wait", "--timeout", "200ms", "J1", "--json"))
		if o.JobID != "J1" || o.Timeout != 200*time.Millisecond || !o.JSON {
			t.Fatalf("%+v", *o)
		}
	})
	t.Run("status", func(t *testing.T) {
		o := wantOK(t, parse(t, testEnv{}, newCmdStatus, "status", "J1"))
		if o.JobID != "J1" || o.JSON {
			t.Fatalf("%+v", *o)
		}
	})
	t.Run("download", func(t *testing.T) {
		o := wantOK(t, parse(t, testEnv{}, newCmdDownload, "download", "F1"))
		if o.ID != "F1" || o.Output.Path != "" {
			t.Fatalf("%+v", *o)
		}
		o = wantOK(t, parse(t, testEnv{}, newCmdDownload, "download", "-o", "x.mp3", "F1", "--json"))
		if o.ID != "F1" || o.Output.Path != "x.mp3" || !o.JSON {
			t.Fatalf("%+v", *o)
		}
	})
	t.Run("no arguments", func(t *testing.T) {
		for _, name := range []string{"jobs", "whoami", "logout"} {
			wantOK(t, commands[name](t, testEnv{}, name, "--json"))
		}
		if o := wantOK(t, parse(t, testEnv{}, newCmdJobs, "--json", "jobs")); !o.JSON {
			t.Fatal("--json before jobs not seen")
		}
	})
}

// strip forgets the options' type, for tests that only look at the outcome.
func strip[O any](p parsed[O]) parsed[struct{}] {
	q := parsed[struct{}]{code: p.code, stderr: p.stderr, f: p.f, userDir: p.userDir}
	if p.opts != nil {
		q.opts = &struct{}{}
	}
	return q
}

// erase turns newCmd's parse into one whose options have no type, for tables that mix
// commands and look only at the outcome.
func erase[O any](newCmd func(*factory, func(*O) error) *cobra.Command) func(*testing.T, testEnv, ...string) parsed[struct{}] {
	return func(t *testing.T, env testEnv, args ...string) parsed[struct{}] {
		t.Helper()
		return strip(parse(t, env, newCmd, args...))
	}
}

// commands are the builders of every command, by name.
var commands = map[string]func(*testing.T, testEnv, ...string) parsed[struct{}]{
	"register": erase(newCmdRegister), "login": erase(newCmdLogin), "logout": erase(newCmdLogout),
	"whoami": erase(newCmdWhoami), "upload": erase(newCmdUpload), "jobs": erase(newCmdJobs),
	"status": erase(newCmdStatus), "wait": erase(newCmdWait), "download": erase(newCmdDownload),
	"convert": erase(newCmdConvert),
}

// TestUsageErrors: bad flags, values and arguments exit 2 before the command runs.
func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	song := filepath.Join(dir, "song.mp3")
	for _, name := range []string{song + "x", filepath.Join(dir, "old.mp3")} {
		if err := os.WriteFile(name, []byte("an MP3 already"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		cmd   string // the command built; args may name another
		args  []string
		vars  map[string]string
		chdir string
		msg   string
	}{
		{"upload without a file", "upload", []string{"upload"}, nil, "", "requires at least 1 arg(s), only received 0"},
		{"upload with two files into one", "upload", []string{"upload", "a", "b", "-o", "x.mp3"}, nil, "", "with several files, -o must be a directory"},
		{"upload to stdout", "upload", []string{"upload", "a", "-o", "-"}, nil, "", "upload prints job ids on stdout"},
		{"upload --jobs 0", "upload", []string{"upload", "a", "b", "--jobs", "0"}, nil, "", "--jobs must be between 1 and 16"},
		{"convert two files to stdout", "convert", []string{"convert", "a.mp4", "b.mp4", "-o", "-"}, nil, "", "with several files, -o must be a directory"},
		{"convert two files onto one name", "convert", []string{"convert", "a/talk.mp4", "b/talk.mp4"}, nil, "", "a/talk.mp4 and b/talk.mp4 would both be saved as talk.mp3"},
		{"convert to stdout with --json", "convert", []string{"convert", "a.mp4", "-o", "-", "--json"}, nil, "", "-o - and --json both write to stdout"},
		{"convert onto a file that exists", "convert", []string{"convert", "x.mp4", "-o", song + "x"}, nil, "", "exists: pass --clobber to overwrite it"},
		{"a server URL that is not one", "whoami", []string{"whoami", "--server", "127.0.0.1:port"}, nil, "", `server URL "127.0.0.1:port" is not a URL such as http://127.0.0.1:8080`},
		{"upload --parallel 0", "upload", []string{"upload", "a", "--parallel", "0"}, nil, "", "--parallel must be between 1 and 64"},
		{"upload --parallel 65", "upload", []string{"upload", "a", "--parallel", "65"}, nil, "", "--parallel must be between 1 and 64"},
		{"upload --parallel not a number", "upload", []string{"upload", "a", "--parallel", "four"}, nil, "", `invalid argument "four" for "--parallel"`},
		{"upload --timeout without a unit", "upload", []string{"upload", "a", "--timeout", "10"}, nil, "", `invalid argument "10" for "--timeout"`},
		{"upload -o without a value", "upload", []string{"upload", "a", "-o"}, nil, "", "flag needs an argument"},
		{"convert onto its input", "convert", []string{"convert", song, "-o", song}, nil, "", "would overwrite the input"},
		{"convert by default onto its input", "convert", []string{"convert", "song.mp3"}, nil, dir, "the output song.mp3 would overwrite the input"},
		{"convert by default onto a file that exists", "convert", []string{"convert", "/videos/old.mp4"}, nil, dir, "old.mp3 exists: pass --clobber to overwrite it"},
		{"convert --parallel 0", "convert", []string{"convert", "a.mp4", "--parallel", "0"}, nil, "", "--parallel must be between 1 and 64"},
		{"convert without a file", "convert", []string{"convert"}, nil, "", "requires at least 1 arg(s), only received 0"},
		{"wait without a job", "wait", []string{"wait"}, nil, "", "accepts 1 arg(s), received 0"},
		{"wait --timeout bad", "wait", []string{"wait", "J", "--timeout", "soon"}, nil, "", `invalid argument "soon" for "--timeout"`},
		{"status with two jobs", "status", []string{"status", "a", "b"}, nil, "", "accepts 1 arg(s), received 2"},
		{"download without an id", "download", []string{"download"}, nil, "", "accepts 1 arg(s), received 0"},
		{"jobs with an argument", "jobs", []string{"jobs", "x"}, nil, "", `unknown command "x" for "v2m jobs"`},
		{"whoami with an unknown flag", "whoami", []string{"whoami", "--bogus"}, nil, "", "unknown flag: --bogus"},
		{"logout with an argument", "logout", []string{"logout", "now"}, nil, "", `unknown command "now" for "v2m logout"`},
		{"register with an argument", "register", []string{"register", "a@example.com"}, nil, "", `unknown command "a@example.com" for "v2m register"`},
		{"unknown command", "whoami", []string{"whoareyou"}, nil, "", `unknown command "whoareyou" for "v2m"`},
		{"a server that is not http", "whoami", []string{"whoami", "--server", "ftp://x"}, nil, "", `server URL "ftp://x": scheme must be http or https`},
		{"a server from the environment that is not http", "jobs", []string{"jobs"}, map[string]string{"V2M_SERVER": "ftp://env"}, "", `server URL "ftp://env"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.chdir != "" {
				t.Chdir(tc.chdir)
			}
			wantUsage(t, commands[tc.cmd](t, testEnv{vars: tc.vars}, tc.args...), tc.msg)
		})
	}
	t.Run("an MP3 onto the terminal", func(t *testing.T) {
		for _, cmd := range []string{"download", "convert"} {
			wantUsage(t, commands[cmd](t, testEnv{ttyOut: true}, cmd, "x.mp4", "-o", "-"), "stdout is a terminal: redirect it")
		}
	})
}

// TestCredentialFlags: register and login share --email and --password-stdin, and check them
// against the terminal before anything is read.
func TestCredentialFlags(t *testing.T) {
	cmds := map[string]func(t *testing.T, env testEnv, args ...string) (parsed[struct{}], *credentialOptions){
		"register": func(t *testing.T, env testEnv, args ...string) (parsed[struct{}], *credentialOptions) {
			p := parse(t, env, newCmdRegister, append([]string{"register"}, args...)...)
			if p.opts == nil {
				return strip(p), nil
			}
			return strip(p), &p.opts.credentialOptions
		},
		"login": func(t *testing.T, env testEnv, args ...string) (parsed[struct{}], *credentialOptions) {
			p := parse(t, env, newCmdLogin, append([]string{"login"}, args...)...)
			if p.opts == nil {
				return strip(p), nil
			}
			return strip(p), &p.opts.credentialOptions
		},
	}
	for name, run := range cmds {
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct {
				name  string
				tty   bool
				args  []string
				want  credentialOptions
				usage string // the usage error, if any
			}{
				{name: "script", args: []string{"--email", " Ann@Example.com ", "--password-stdin"},
					want: credentialOptions{Email: "Ann@Example.com", PasswordStdin: true}},
				{name: "script on a terminal", tty: true, args: []string{"--email=a@example.com", "--password-stdin"},
					want: credentialOptions{Email: "a@example.com", PasswordStdin: true}},
				{name: "prompt for both", tty: true},
				{name: "prompt for the password", tty: true, args: []string{"--email", "a@example.com"}, want: credentialOptions{Email: "a@example.com"}},
				{name: "password-stdin needs email", args: []string{"--password-stdin"}, usage: "--password-stdin needs --email"},
				{name: "password-stdin needs a non-blank email", tty: true, args: []string{"--password-stdin", "--email", "  "}, usage: "--password-stdin needs --email"},
				{name: "no terminal, no flags", usage: "stdin is not a terminal: pass --email and --password-stdin"},
				{name: "no terminal, email only", args: []string{"--email", "a@example.com"}, usage: "stdin is not a terminal"},
				{name: "no arguments", tty: true, args: []string{"a@example.com"}, usage: `unknown command "a@example.com"`},
				{name: "password-stdin takes no value", args: []string{"--email", "a@example.com", "--password-stdin=maybe"}, usage: `invalid argument "maybe"`},
			} {
				t.Run(tc.name, func(t *testing.T) {
					p, got := run(t, testEnv{tty: tc.tty}, tc.args...)
					if tc.usage != "" {
						wantUsage(t, p, tc.usage)
						return
					}
					wantOK(t, p)
					if *got != tc.want {
						t.Fatalf("%q parsed as %+v, want %+v", tc.args, *got, tc.want)
					}
				})
			}
		})
	}
}

// TestConfigPrecedence: the server is --server, then V2M_SERVER, then config.yaml, then the
// default; the config dir is --config-dir, then V2M_CONFIG_DIR, then the user's config dir.
func TestConfigPrecedence(t *testing.T) {
	fileDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(fileDir, "config.yaml"), []byte("server: https://file.example.com/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyDir := t.TempDir()
	for _, tc := range []struct {
		name       string
		vars       map[string]string
		args       []string
		wantServer string
		wantDir    string // "" for the user's config dir + /v2m
	}{
		{"default", map[string]string{"V2M_CONFIG_DIR": emptyDir}, nil, DefaultServer, emptyDir},
		{"file", map[string]string{"V2M_CONFIG_DIR": fileDir}, nil, "https://file.example.com", fileDir},
		{"env over file", map[string]string{"V2M_CONFIG_DIR": fileDir, "V2M_SERVER": "http://env.example.com:8080/"}, nil,
			"http://env.example.com:8080", fileDir},
		{"flag over env", map[string]string{"V2M_CONFIG_DIR": fileDir, "V2M_SERVER": "http://env.example.com"},
			[]string{"--server", "https://flag.example.com"}, "https://flag.example.com", fileDir},
		{"flag after the verb", map[string]string{"V2M_CONFIG_DIR": emptyDir}, []string{"logout", "--server=http://127.0.0.1:9"},
			"http://127.0.0.1:9", emptyDir},
		{"config-dir flag over env", map[string]string{"V2M_CONFIG_DIR": emptyDir}, []string{"--config-dir", fileDir},
			"https://file.example.com", fileDir},
		{"user config dir", map[string]string{"V2M_CONFIG_DIR": ""}, nil, DefaultServer, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if len(args) == 0 || args[0] != "logout" {
				args = append(args, "logout")
			}
			p := parse(t, testEnv{vars: tc.vars}, newCmdLogout, args...)
			cfg, err := wantOK(t, p).Config()
			if err != nil {
				t.Fatal(err)
			}
			wantDir := tc.wantDir
			if wantDir == "" {
				wantDir = filepath.Join(p.userDir, "v2m")
			}
			if cfg.Server != tc.wantServer || cfg.Dir != wantDir {
				t.Fatalf("config %+v, want server %s in %s", *cfg, tc.wantServer, wantDir)
			}
		})
	}
	t.Run("unreadable config.yaml", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("server: [\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		p := parse(t, testEnv{vars: map[string]string{"V2M_CONFIG_DIR": dir}}, newCmdLogout, "logout")
		if p.code != ExitError || p.opts != nil || !strings.HasPrefix(p.stderr, "v2m: read config: ") {
			t.Fatalf("exit %d, stderr %q", p.code, p.stderr)
		}
	})
}

// fakeStore is a token store in memory.
type fakeStore struct{ token string }

func (s *fakeStore) Get() (string, error) {
	if s.token == "" {
		return "", client.ErrNoToken
	}
	return s.token, nil
}
func (s *fakeStore) Set(t string) error { s.token = t; return nil }
func (s *fakeStore) Delete() error      { s.token = ""; return nil }

// TestFactoryClients: the options' client and token store are built on first use, for the
// configured server, with the stored token.
func TestFactoryClients(t *testing.T) {
	type made struct{ server, token string }
	var clients []made
	var stores []string
	store := &fakeStore{}
	env := testEnv{vars: map[string]string{"V2M_SERVER": "https://v2m.example.com/"}, deps: Deps{
		NewClient: func(server, token string) (*client.Client, error) {
			clients = append(clients, made{server, token})
			return client.New(server, client.WithToken(token))
		},
		TokenStore: func(server, _ string) client.TokenStore {
			stores = append(stores, server)
			return store
		},
	}}

	p := parse(t, env, newCmdWhoami, "whoami")
	o := wantOK(t, p)
	if len(clients) != 0 || len(stores) != 0 {
		t.Fatalf("parsing built clients %v and stores %v", clients, stores)
	}
	_, err := o.Client()
	if !errors.Is(err, client.ErrNoToken) || exitCode(err) != ExitAuth || err.Error() != "no token for https://v2m.example.com: not logged in" {
		t.Fatalf("no token: %v (exit %d)", err, exitCode(err))
	}
	store.token = "tok"
	if _, err := o.Client(); err != nil {
		t.Fatal(err)
	}
	if len(clients) != 1 || clients[0] != (made{"https://v2m.example.com", "tok"}) {
		t.Fatalf("clients made: %v", clients)
	}

	lo := wantOK(t, parse(t, env, newCmdLogin, "login", "--email", "a@example.com", "--password-stdin"))
	if _, err := lo.Client(); err != nil {
		t.Fatal(err)
	}
	if clients[len(clients)-1] != (made{"https://v2m.example.com", ""}) {
		t.Fatalf("login's client carries a token: %v", clients)
	}
	if s, err := lo.TokenStore(); err != nil || s != client.TokenStore(store) {
		t.Fatalf("login's token store: %v %v", s, err)
	}
	if stores[len(stores)-1] != "https://v2m.example.com" {
		t.Fatalf("token stores made for %v", stores)
	}
}

func TestVersionAndHelp(t *testing.T) {
	var out bytes.Buffer
	code := Run(context.Background(), []string{"--version"}, Deps{Stdout: &out})
	if code != ExitOK || !strings.HasPrefix(out.String(), "v2m ") || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("--version: exit %d, %q", code, out.String())
	}
	out.Reset()
	code = Run(context.Background(), nil, Deps{Stdout: &out})
	if code != ExitOK || !strings.Contains(out.String(), "Available Commands:") {
		t.Fatalf("no arguments: exit %d, %q", code, out.String())
	}
	for _, name := range []string{"register", "login", "logout", "whoami", "upload", "jobs", "status", "wait", "download", "convert"} {
		if !strings.Contains(out.String(), "  "+name+" ") {
			t.Errorf("help lacks %s", name)
		}
	}
}
