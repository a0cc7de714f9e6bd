package webhook_test

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/server/webhook"
	"github.com/v2m/v2m/pkg/wire"
)

// fakeDNS is a Resolver with fixed answers; a name it does not know does not exist. Its
// answers can change between lookups, as a rebinding attacker's DNS does.
type fakeDNS struct {
	mu      sync.Mutex
	names   map[string][]netip.Addr
	fail    error // when set, every lookup fails with it
	lookups []string
}

func newDNS(pairs ...string) *fakeDNS {
	d := &fakeDNS{names: map[string][]netip.Addr{}}
	for i := 0; i+1 < len(pairs); i += 2 {
		d.set(pairs[i], pairs[i+1])
	}
	return d
}

// set makes name resolve to the addresses in the comma-separated list.
func (d *fakeDNS) set(name, addrs string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var list []netip.Addr
	for a := range strings.SplitSeq(addrs, ",") {
		list = append(list, netip.MustParseAddr(a))
	}
	d.names[name] = list
}

func (d *fakeDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lookups = append(d.lookups, host)
	if d.fail != nil {
		return nil, d.fail
	}
	if a, ok := d.names[host]; ok {
		return slices.Clone(a), nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestForbidden(t *testing.T) {
	for _, a := range []string{
		"0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.254", "127.0.0.1", "127.8.9.10",
		"169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.8", "192.0.2.1", "192.168.1.1", "198.18.0.1",
		"198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
		"::", "::1", "::127.0.0.1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
		"fe80::1", "fc00::1", "fd12:3456::1", "fd00:ec2::254", "ff02::1", "ff05::2", "fec0::1", "2001:db8::1",
		"64:ff9b::7f00:1", "64:ff9b::a00:1", "2002:7f00:1::", "2002:a9fe:a9fe::1", "2001::1", "100::1",
	} {
		if !webhook.Forbidden(netip.MustParseAddr(a)) {
			t.Errorf("Forbidden(%s) = false, want true", a)
		}
	}
	for _, a := range []string{
		"93.184.215.14", "8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.1", "172.15.255.255", "172.32.0.1",
		"192.167.1.1", "192.169.0.1", "11.0.0.1", "126.255.255.255", "128.0.0.1", "223.255.255.255",
		"2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
	} {
		if webhook.Forbidden(netip.MustParseAddr(a)) {
			t.Errorf("Forbidden(%s) = true, want false: a public address", a)
		}
	}
	if !webhook.Forbidden(netip.Addr{}) {
		t.Error("Forbidden of the zero Addr = false")
	}
}

func newService(t *testing.T, dns *fakeDNS, edit ...func(*webhook.Service)) *webhook.Service {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "v2m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &webhook.Service{Store: db.Webhooks(), Resolver: dns}
	for _, f := range edit {
		f(s)
	}
	return s
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if code == "" && err != nil || code != "" && !server.IsCode(err, code) {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, server.ErrorCode(err), code)
	}
}

func TestServiceCreate(t *testing.T) {
	dns := newDNS("hooks.example.com", "93.184.215.14,2606:2800:21f:cb07:6820:80da:af6b:8b2c",
		"internal.example.com", "10.1.2.3", "mixed.example.com", "93.184.215.14,127.0.0.1",
		"metadata.example.com", "169.254.169.254", "mapped.example.com", "::ffff:192.168.0.1")
	s := newService(t, dns)
	ctx := t.Context()

	w, err := s.Create(ctx, "ann@example.com", wire.NewWebhook{URL: "https://hooks.example.com/v2m?k=1"})
	wantCode(t, "Create of a public host", err, "")
	if !server.ValidID(w.ID) || w.Owner != "ann@example.com" || w.URL != "https://hooks.example.com/v2m?k=1" ||
		!slices.Equal(w.Events, wire.WebhookEvents) || len(w.Secret) != len("whsec_")+64 || !strings.HasPrefix(w.Secret, "whsec_") {
		t.Fatalf("Create = %+v", w)
	}
	w2, err := s.Create(ctx, "ann@example.com", wire.NewWebhook{URL: "https://93.184.215.14/", Events: []string{wire.EventJobFailed}})
	wantCode(t, "Create of a public IP address", err, "")
	if w2.Secret == w.Secret || !slices.Equal(w2.Events, []string{wire.EventJobFailed}) {
		t.Fatalf("second webhook %+v: want its own secret and only job.failed", w2)
	}

	for _, tc := range []struct{ url, msg string }{
		{"https://internal.example.com/", "does not resolve to a public internet address"},
		{"https://mixed.example.com/", "does not resolve to a public internet address"},
		{"https://metadata.example.com/latest/meta-data/", "does not resolve to a public internet address"},
		{"https://mapped.example.com/", "does not resolve to a public internet address"},
		{"https://nowhere.example.com/", "does not resolve to a public internet address"},
		{"http://localhost:8080/", "does not resolve to a public internet address"},
		{"http://api.LOCALHOST./", "does not resolve to a public internet address"},
		{"http://127.0.0.1:8080/", "127.0.0.1 is a private, loopback or otherwise internal address"},
		{"http://[::1]/", "::1 is a private"},
		{"http://[::ffff:169.254.169.254]/", "is a private"},
		{"http://0.0.0.0:80/", "is a private"},
		{"ftp://hooks.example.com/", `field "url" must be an http or https URL`},
	} {
		_, err := s.Create(ctx, "ann@example.com", wire.NewWebhook{URL: tc.url})
		wantCode(t, "Create "+tc.url, err, server.EINVALID)
		if msg := server.ErrorMessage(err); !strings.Contains(msg, tc.msg) || strings.Contains(msg, "10.1.2.3") {
			t.Errorf("Create %s: message %q, want %q and no internal address", tc.url, msg, tc.msg)
		}
	}
	_, err = s.Create(ctx, "ann@example.com", wire.NewWebhook{URL: "https://hooks.example.com/", Events: []string{"job.started"}})
	wantCode(t, "Create with an unknown event", err, server.EINVALID)
	list, err := s.Webhooks(ctx, "ann@example.com")
	if err != nil || len(list) != 2 {
		t.Fatalf("after the refusals ann has %d webhooks (%v), want the 2 accepted", len(list), err)
	}
}

func TestServiceLookupFailure(t *testing.T) {
	dns := newDNS()
	dns.fail = &net.DNSError{Err: "server misbehaving", Name: "hooks.example.com", IsTemporary: true}
	_, err := newService(t, dns).Create(t.Context(), "ann@example.com", wire.NewWebhook{URL: "https://hooks.example.com/"})
	wantCode(t, "Create while DNS fails", err, server.EUNAVAILABLE)
	if msg := server.ErrorMessage(err); strings.Contains(msg, "misbehaving") {
		t.Errorf("message %q carries the resolver's error", msg)
	}
}

func TestServiceAllowPrivate(t *testing.T) {
	dns := newDNS()
	s := newService(t, dns, func(s *webhook.Service) { s.AllowPrivate = true })
	for _, u := range []string{"http://127.0.0.1:9000/hook", "http://receiver.default.svc.cluster.local/hook", "http://localhost/"} {
		_, err := s.Create(t.Context(), "ann@example.com", wire.NewWebhook{URL: u})
		wantCode(t, "Create "+u+" with private addresses allowed", err, "")
	}
	// The URL's shape is checked all the same.
	_, err := s.Create(t.Context(), "ann@example.com", wire.NewWebhook{URL: "http://user:pw@127.0.0.1/"})
	wantCode(t, "Create with credentials", err, server.EINVALID)
	if len(dns.lookups) != 0 {
		t.Errorf("looked up %v with private addresses allowed: nothing to check", dns.lookups)
	}
}

func TestServiceLimitAndOwnership(t *testing.T) {
	s := newService(t, newDNS(), func(s *webhook.Service) { s.MaxPerUser = 2 })
	ctx := t.Context()
	var ids []string
	for range 2 {
		w, err := s.Create(ctx, "ann@example.com", wire.NewWebhook{URL: "https://93.184.215.14/"})
		wantCode(t, "Create within the limit", err, "")
		ids = append(ids, w.ID)
	}
	_, err := s.Create(ctx, "ann@example.com", wire.NewWebhook{URL: "https://93.184.215.14/"})
	wantCode(t, "Create over the limit", err, server.ECONFLICT)
	if msg := server.ErrorMessage(err); !strings.Contains(msg, "2 webhooks") || strings.Contains(msg, "ann@") {
		t.Errorf("limit message %q", msg)
	}
	_, err = s.Webhook(ctx, "bob@example.com", ids[0])
	wantCode(t, "Webhook of someone else's", err, server.ENOTFOUND)
	wantCode(t, "Delete of someone else's", s.Delete(ctx, "bob@example.com", ids[0]), server.ENOTFOUND)
	for _, id := range []string{"", "nope", strings.Repeat("z", 24), strings.Repeat("a", 500), "../" + ids[0]} {
		_, err := s.Webhook(ctx, "ann@example.com", id)
		wantCode(t, "Webhook of a malformed id", err, server.ENOTFOUND)
		if len(server.ErrorMessage(err)) > 100 {
			t.Errorf("message of a long id is %d bytes long", len(server.ErrorMessage(err)))
		}
	}
	wantCode(t, "Delete", s.Delete(ctx, "ann@example.com", ids[0]), "")
	wantCode(t, "Delete again", s.Delete(ctx, "ann@example.com", ids[0]), server.ENOTFOUND)
	_, err = s.Create(ctx, "ann@example.com", wire.NewWebhook{URL: "https://93.184.215.14/"})
	wantCode(t, "Create after a delete", err, "")
}
