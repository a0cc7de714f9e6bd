package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/wire"
)

// UserAgent is the User-Agent of deliveries.
const UserAgent = "v2m-webhook/1"

// DefaultTimeout bounds one delivery, from the connection to the end of the answer's headers.
const DefaultTimeout = 10 * time.Second

// maxAnswer is how much of a receiver's answer is read; the rest is discarded with the
// connection.
const maxAnswer = 4 << 10

// ErrForbiddenAddress is the error of a delivery whose host led to an address that webhooks
// may not reach: at creation it resolved elsewhere, or it was allowed by a server that allowed
// private addresses then.
var ErrForbiddenAddress = errors.New("the webhook's host leads to a private, loopback or otherwise internal address")

// Event returns the event that announces j, a final job: its id (the same for every webhook
// that gets it and on every retry), its type and its body.
func Event(j *server.Job) (wire.WebhookEvent, error) {
	typ := server.EventOf(j.State)
	if typ == "" {
		return wire.WebhookEvent{}, fmt.Errorf("job %s is %s: no event announces it", j.ID, j.State)
	}
	return wire.WebhookEvent{ID: digest("event", j.ID, typ), Type: typ, CreatedAt: j.FinishedAt, Job: jobs.WireJob(j)}, nil
}

// DeliveryID is the id of the delivery of event eventID to webhook hookID: the X-V2M-Delivery
// header, the same on every retry, for receivers to drop a delivery they already have.
func DeliveryID(hookID, eventID string) string { return digest("delivery", hookID, eventID) }

// digest derives a stable id in the shape of server.NewID from its parts.
func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// Delivery is one event to send to one webhook.
type Delivery struct {
	ID    string // X-V2M-Delivery
	Event string // X-V2M-Event
	Body  []byte // the JSON of a wire.WebhookEvent
}

// Deliverer POSTs events to webhooks. Its zero value is ready: private addresses refused, real
// DNS, DefaultTimeout. It is safe for concurrent use; set its fields before the first Deliver.
type Deliverer struct {
	// AllowPrivate lets deliveries reach private, loopback and other internal addresses.
	AllowPrivate bool
	// Resolver looks webhook hosts up; net.DefaultResolver when nil.
	Resolver Resolver
	Timeout  time.Duration    // DefaultTimeout when 0
	Now      func() time.Time // the signatures' clock; time.Now when nil

	once   sync.Once
	client *http.Client
}

// Deliver POSTs d to w, signed with w's secret, and returns the answer's status (0 when there
// was none). nil means a 2xx answer. An error marked server.Permanent means that trying again
// would not help: an answer other than 2xx, 408, 429 or 5xx (redirects are not followed), or
// an address webhooks may not reach. Other errors (5xx, 408, 429, network) may pass later.
// Errors never carry the URL, whose query may hold the receiver's own secrets.
func (dl *Deliverer) Deliver(ctx context.Context, w *server.Webhook, d Delivery) (int, error) {
	dl.once.Do(dl.init)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(d.Body))
	if err != nil {
		return 0, server.Permanent(errors.New("the webhook's URL cannot be requested"))
	}
	now := time.Now
	if dl.Now != nil {
		now = dl.Now
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", UserAgent)
	h.Set(wire.HeaderEvent, d.Event)
	h.Set(wire.HeaderDelivery, d.ID)
	h.Set(wire.HeaderSignature, wire.SignWebhook(w.Secret, now(), d.Body))
	resp, err := dl.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message quotes the URL
		}
		if errors.Is(err, ErrForbiddenAddress) {
			return 0, server.Permanent(err)
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	resp.Body.Close()
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return code, nil
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return code, fmt.Errorf("the receiver answered %d %s", code, http.StatusText(code))
	case code >= 300 && code < 400:
		return code, server.Permanent(fmt.Errorf("the receiver answered %d %s, a redirect, which deliveries do not follow", code, http.StatusText(code)))
	default:
		return code, server.Permanent(fmt.Errorf("the receiver answered %d %s", code, http.StatusText(code)))
	}
}

func (dl *Deliverer) init() {
	timeout := dl.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !dl.AllowPrivate {
		dialer.Control = refuseForbidden
	}
	tr := &http.Transport{
		Proxy: nil, // a proxy would be dialled instead of the receiver, and the check with it
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dl.dial(ctx, dialer, network, addr)
		},
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 16 << 10,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        30 * time.Second,
	}
	dl.client = &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// dial resolves addr's host with the Deliverer's resolver and connects to its addresses in
// turn through dialer, whose Control refuses forbidden ones.
func (dl *Deliverer) dial(ctx context.Context, dialer *net.Dialer, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{a}
	} else {
		r := dl.Resolver
		if r == nil {
			r = net.DefaultResolver
		}
		if ips, err = r.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, fmt.Errorf("look up %s: %w", host, err)
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("look up %s: no addresses", host)
		}
	}
	var errs []error
	for _, ip := range ips {
		c, err := dialer.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// refuseForbidden is the dialer's Control: it sees the address about to be connected, after
// every lookup, and refuses the forbidden ones.
func refuseForbidden(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q is not an address", ErrForbiddenAddress, address)
	}
	if Forbidden(ap.Addr()) {
		return fmt.Errorf("%w (%s)", ErrForbiddenAddress, ap.Addr())
	}
	return nil
}
