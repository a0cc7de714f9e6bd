// Package webhook is v2m's completion webhooks: which URLs a user may register (Service) and
// how an event is delivered to them (Deliverer), signed, time-limited, and never to an
// internal address.
//
// Policy, in one place:
//   - A webhook URL is http or https, at most wire.MaxWebhookURL bytes, without credentials;
//     its host must resolve to public addresses only, unless AllowPrivate is set. The check
//     is made when the webhook is created, and again on every connection a delivery makes
//     (on the address actually dialled), so that a name that resolves elsewhere later (DNS
//     rebinding) reaches nothing internal.
//   - A user has at most MaxPerUser webhooks; someone else's webhook is ENOTFOUND.
//   - A delivery succeeds on a 2xx answer. 408, 429, 5xx and network errors are worth a
//     retry; any other answer, and a refused address, are permanent.
package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

// DefaultMaxPerUser is how many webhooks a user may have when Service.MaxPerUser is 0.
const DefaultMaxPerUser = 10

// lookupTimeout bounds the DNS lookup of a new webhook's host.
const lookupTimeout = 5 * time.Second

// Service registers, lists and removes users' webhooks.
type Service struct {
	Store server.WebhookStore
	// Resolver looks the hosts of new webhooks up; net.DefaultResolver when nil.
	Resolver Resolver
	// AllowPrivate accepts hosts on private, loopback and other internal addresses (in-cluster
	// receivers, tests).
	AllowPrivate bool
	MaxPerUser   int // DefaultMaxPerUser when 0
	Logger       *slog.Logger
	Now          func() time.Time // time.Now when nil
}

func (s *Service) limit() int {
	if s.MaxPerUser <= 0 {
		return DefaultMaxPerUser
	}
	return s.MaxPerUser
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC().Truncate(time.Millisecond)
	}
	return s.Now().UTC().Truncate(time.Millisecond)
}

func (s *Service) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Create registers a webhook of owner's, with a new secret, after checking its URL and events
// (EINVALID naming the field) and that owner has room for it (ECONFLICT).
func (s *Service) Create(ctx context.Context, owner string, in wire.NewWebhook) (*server.Webhook, error) {
	u, err := wire.CheckWebhookURL(in.URL)
	if err != nil {
		return nil, server.Errorf(server.EINVALID, "%v", err)
	}
	events, err := wire.CleanEvents(in.Events)
	if err != nil {
		return nil, server.Errorf(server.EINVALID, "%v", err)
	}
	if err := s.checkHost(ctx, u.Hostname()); err != nil {
		return nil, err
	}
	secret, err := newSecret()
	if err != nil {
		return nil, err
	}
	w := &server.Webhook{ID: server.NewID(), Owner: owner, URL: in.URL, Events: events, Secret: secret, CreatedAt: s.now()}
	if err := s.Store.CreateWebhook(ctx, w, s.limit()); err != nil {
		if server.IsCode(err, server.ECONFLICT) {
			return nil, server.Errorf(server.ECONFLICT, "you have %d webhooks, the most allowed: delete one first", s.limit())
		}
		return nil, fmt.Errorf("create webhook: %w", err)
	}
	s.log().Info("webhook created", "webhook_id", w.ID, "user_ref", server.UserRef(owner), "host", u.Hostname(), "events", strings.Join(events, ","))
	return w, nil
}

// Webhook returns owner's webhook id; someone else's, or a malformed id, is ENOTFOUND.
func (s *Service) Webhook(ctx context.Context, owner, id string) (*server.Webhook, error) {
	if !server.ValidID(id) {
		return nil, notFound(id)
	}
	return s.Store.Webhook(ctx, owner, id)
}

// Webhooks returns owner's webhooks, oldest first.
func (s *Service) Webhooks(ctx context.Context, owner string) ([]*server.Webhook, error) {
	return s.Store.Webhooks(ctx, owner)
}

// Delete removes owner's webhook id; someone else's, or a malformed id, is ENOTFOUND.
func (s *Service) Delete(ctx context.Context, owner, id string) error {
	if !server.ValidID(id) {
		return notFound(id)
	}
	if err := s.Store.DeleteWebhook(ctx, owner, id); err != nil {
		return err
	}
	s.log().Info("webhook deleted", "webhook_id", id, "user_ref", server.UserRef(owner))
	return nil
}

func notFound(id string) error {
	if len(id) > 64 {
		id = id[:64] + "..."
	}
	return server.Errorf(server.ENOTFOUND, "webhook %q not found", id)
}

// checkHost refuses a host that is, or resolves to, an address a webhook may not reach. The
// message is the same whether the name does not resolve or resolves to an internal address,
// and never names the address: it must not tell users what internal names exist.
func (s *Service) checkHost(ctx context.Context, host string) error {
	if s.AllowPrivate {
		return nil
	}
	refused := server.Errorf(server.EINVALID,
		`field "url": the host %q does not resolve to a public internet address (private, loopback, link-local and other internal addresses are refused)`, host)
	if a, err := netip.ParseAddr(host); err == nil {
		if Forbidden(a) {
			return server.Errorf(server.EINVALID, `field "url": %s is a private, loopback or otherwise internal address; webhooks must reach a public one`, host)
		}
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return refused
	}
	r := s.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	addrs, err := r.LookupNetIP(lctx, "ip", host)
	var dnsErr *net.DNSError
	switch {
	case err == nil && len(addrs) == 0, errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return refused
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return fmt.Errorf("look up webhook host %s: %w: %w", host,
			server.Errorf(server.EUNAVAILABLE, "the webhook's host could not be looked up; try again"), err)
	}
	for _, a := range addrs {
		if Forbidden(a) {
			return refused
		}
	}
	return nil
}

// newSecret returns a new webhook secret: "whsec_" and 64 hex digits (256 random bits).
func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make webhook secret: %w", err)
	}
	return "whsec_" + hex.EncodeToString(b[:]), nil
}
