package daemon

import (
	"net/netip"
	"strings"
	"time"
	"unicode"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/auth"
	"github.com/v2m/v2m/pkg/server/throttle"
	"github.com/v2m/v2m/pkg/server/token"
)

// The limits of logins and registrations, with their defaults. Each process (standalone, each
// gateway replica, each auth replica) applies them on its own: behind a load balancer the
// effective limit is the per-process one times the replicas an attacker's requests reach.
var (
	throttleSettings = []setting{
		{"login-rate", "1/m", "sustained logins per email address, N/s, N/m or N/h (off: unlimited)"},
		{"login-burst", 10, "logins per email address allowed in a row before --login-rate applies"},
		{"login-ip-rate", "30/m", "sustained logins per client IP (off: unlimited)"},
		{"login-ip-burst", 30, "logins per client IP allowed in a row before --login-ip-rate applies"},
		{"register-rate", "3/h", "sustained registrations per email address (off: unlimited)"},
		{"register-burst", 3, "registrations per email address allowed in a row"},
		{"register-ip-rate", "10/h", "sustained registrations per client IP (off: unlimited)"},
		{"register-ip-burst", 10, "registrations per client IP allowed in a row"},
		{"trusted-proxies", []string{}, "CIDRs of the reverse proxies whose X-Forwarded-For names the client; none by default (the header is ignored)"},
	}
	hashSettings = []setting{
		{"bcrypt-concurrency", 0, "bcrypt computations at once; 0 for half the CPUs (at least 1)"},
		{"bcrypt-wait", auth.DefaultHashWait, "longest a login or registration waits for a bcrypt slot before it gets 503"},
	}
)

// throttling reads throttleSettings.
func throttling(s *settings) (login, register *throttle.Policy, proxies []netip.Prefix, err error) {
	limit := func(name string) (throttle.Limit, error) {
		r, err := throttle.ParseRate(s.str(name + "-rate"))
		if err != nil {
			return throttle.Limit{}, badSetting("--%s-rate: %w", name, err)
		}
		b := s.int(name + "-burst")
		if b < 0 {
			return throttle.Limit{}, badSetting("--%s-burst must be 0 (unlimited) or more", name)
		}
		return throttle.Limit{Rate: r, Burst: b}, nil
	}
	var l [4]throttle.Limit
	for i, name := range []string{"login", "login-ip", "register", "register-ip"} {
		if l[i], err = limit(name); err != nil {
			return nil, nil, nil, err
		}
	}
	var cidrs []string // a flag gives a list; an environment variable or a file may give "a,b" or "a b"
	for _, v := range s.strings("trusted-proxies") {
		cidrs = append(cidrs, strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })...)
	}
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			a, aerr := netip.ParseAddr(c)
			if aerr != nil {
				return nil, nil, nil, badSetting("--trusted-proxies: %q is not a CIDR such as 10.0.0.0/8", c)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		proxies = append(proxies, p.Masked())
	}
	login = throttle.NewPolicy(throttle.NewStore(l[0], 0), throttle.NewStore(l[1], 0))
	register = throttle.NewPolicy(throttle.NewStore(l[2], 0), throttle.NewStore(l[3], 0))
	return login, register, proxies, nil
}

// hashLimits reads hashSettings.
func hashLimits(s *settings) (int, time.Duration, error) {
	n, wait := s.int("bcrypt-concurrency"), s.dur("bcrypt-wait")
	if n < 0 || wait < 0 {
		return 0, 0, badSetting("--bcrypt-concurrency and --bcrypt-wait must not be negative")
	}
	return n, wait, nil
}

// accountService is the registration and login service over users, signing tokens with key:
// the auth service's and standalone's, with the same settings.
func accountService(s *settings, users server.UserStore, revocations server.RevocationStore, key token.Key, issuer string) (*auth.Service, error) {
	n, wait, err := hashLimits(s)
	if err != nil {
		return nil, err
	}
	return &auth.Service{Users: users, Tokens: &token.Issuer{Key: key, Issuer: issuer, TTL: s.dur("token-ttl")},
		Cost: s.int("bcrypt-cost"), HashConcurrency: n, HashWait: wait, Revocations: revocations}, nil
}
