package daemon

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

func throttleFrom(t *testing.T, env map[string]string, args ...string) (*settings, error) {
	t.Helper()
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	s := bind(cmd, throttleSettings, hashSettings)
	for k, v := range env {
		t.Setenv(k, v)
	}
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if err := s.load(); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := throttling(s)
	return s, err
}

func TestThrottleSettings(t *testing.T) {
	s, err := throttleFrom(t, nil)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	login, register, proxies, _ := throttling(s)
	if login == nil || register == nil || len(proxies) != 0 {
		t.Fatalf("defaults: trusted proxies %v, want none", proxies)
	}
	// A human who mistypes five times gets through; a script doing 200 is stopped.
	var refused int
	for i := range 200 {
		if login.Allow("ann@example.com", "192.0.2.1") > 0 {
			if i < 5 {
				t.Fatalf("default login limit refused attempt %d", i+1)
			}
			refused++
		}
	}
	if refused < 180 {
		t.Fatalf("default login limit let %d of 200 attempts through", 200-refused)
	}
	if n, wait, err := hashLimits(s); n != 0 || wait != 2*time.Second || err != nil {
		t.Fatalf("bcrypt defaults: %d %v %v", n, wait, err)
	}

	// From the environment, a comma- or space-separated list; bare addresses are /32 or /128.
	s, err = throttleFrom(t, map[string]string{"V2MD_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7 fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, proxies, _ = throttling(s)
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("fd00::/8")}
	if !slices.Equal(proxies, want) {
		t.Fatalf("trusted proxies %v, want %v", proxies, want)
	}
	for _, args := range [][]string{
		{"--trusted-proxies", "10.0.0.0/33"}, {"--trusted-proxies", "gateway"}, {"--login-rate", "10"},
		{"--register-ip-rate", "5/d"}, {"--login-burst", "-1"},
	} {
		if _, err := throttleFrom(t, nil, args...); err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(args[0], "--")) {
			t.Errorf("%v: err %v, want one naming the setting", args, err)
		}
	}
	if s, err := throttleFrom(t, nil, "--login-rate", "off", "--login-ip-burst", "0"); err != nil {
		t.Fatal(err)
	} else if login, _, _, _ := throttling(s); login.Allow("a", "b") != 0 {
		t.Fatal("limits switched off still refuse")
	}
}
