package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"sync"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// TLS modes of SMTP.
const (
	TLSAuto     = "auto"     // STARTTLS when the server offers it, plain text otherwise
	TLSStartTLS = "starttls" // STARTTLS, or fail
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSNone     = "none"     // never TLS
)

// DefaultTimeout bounds one Send when SMTP.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// SMTP sends mail through an SMTP server. The zero TLS mode is TLSAuto.
type SMTP struct {
	Addr      string // host:port
	From      string // the sender, "Name <addr>" or "addr"
	User      string // PLAIN authentication when set
	Password  string
	TLS       string        // TLSAuto, TLSStartTLS, TLSImplicit or TLSNone
	Timeout   time.Duration // for the whole conversation; DefaultTimeout when zero
	HelloName string        // the EHLO name; "localhost" when empty
	// TLSConfig, when set, is used for STARTTLS and implicit TLS (its ServerName defaults to
	// the host of Addr).
	TLSConfig *tls.Config
	// CheckEvery is how long Check keeps its answer; DefaultCheckEvery when zero.
	CheckEvery time.Duration

	checkMu   sync.Mutex
	checkedAt time.Time
	checkErr  error
}

var _ server.Mailer = (*SMTP)(nil)

// Send delivers m. An address the server refuses for good (a 5xx reply) and a malformed
// mail give errors marked server.Permanent; a server that cannot be reached, or a 4xx
// reply, gives an error worth retrying.
func (s *SMTP) Send(ctx context.Context, m server.Mail) error {
	msg, err := formatMessage(s.From, m, time.Now())
	if err != nil {
		return err
	}
	if err := s.send(ctx, msg); err != nil {
		return fmt.Errorf("smtp send to %s via %s: %w", server.UserRef(msg.To), s.Addr, classify(err))
	}
	return nil
}

func (s *SMTP) send(ctx context.Context, msg *message) error {
	c, done, err := s.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := c.Mail(msg.From); err != nil {
		return ctxErr(ctx, fmt.Errorf("mail from: %w", err))
	}
	if err := c.Rcpt(msg.To); err != nil {
		return ctxErr(ctx, fmt.Errorf("rcpt to: %w", err))
	}
	w, err := c.Data()
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("data: %w", err))
	}
	if _, err := w.Write(msg.Data); err != nil {
		return ctxErr(ctx, fmt.Errorf("data: %w", err))
	}
	if err := w.Close(); err != nil {
		return ctxErr(ctx, fmt.Errorf("data: %w", err))
	}
	// The message was accepted at the end of DATA; a failing QUIT does not undo that.
	_ = c.Quit()
	return nil
}

// open connects, greets, switches to TLS as the mode says and authenticates: a client ready
// for MAIL FROM. done closes it all.
func (s *SMTP) open(ctx context.Context) (_ *smtp.Client, done func(), err error) {
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return nil, nil, server.Permanent(fmt.Errorf("bad address: %w", err))
	}
	mode := s.TLS
	if mode == "" {
		mode = TLSAuto
	}
	switch mode {
	case TLSAuto, TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return nil, nil, server.Permanent(fmt.Errorf("unknown TLS mode %q", mode))
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dialer := net.Dialer{Deadline: deadline}
	conn, err := dialer.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return nil, nil, err
	}
	// A cancelled ctx interrupts whatever read or write is in progress.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	var c *smtp.Client
	closeAll := func() {
		if c != nil {
			c.Close()
		}
		stop()
		conn.Close()
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, nil, err
	}

	tlsConfig := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if s.TLSConfig != nil {
		tlsConfig = s.TLSConfig.Clone()
		if tlsConfig.ServerName == "" {
			tlsConfig.ServerName = host
		}
	}
	if mode == TLSImplicit {
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, nil, fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	if c, err = smtp.NewClient(conn, host); err != nil {
		return nil, nil, ctxErr(ctx, err)
	}
	hello := s.HelloName
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return nil, nil, ctxErr(ctx, fmt.Errorf("ehlo: %w", err))
	}
	if mode == TLSAuto || mode == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsConfig); err != nil {
				return nil, nil, ctxErr(ctx, fmt.Errorf("starttls: %w", err))
			}
		} else if mode == TLSStartTLS {
			return nil, nil, errors.New("server does not offer STARTTLS, and TLS mode starttls requires it")
		}
	}
	if s.User != "" {
		if err := c.Auth(smtp.PlainAuth("", s.User, s.Password, host)); err != nil {
			return nil, nil, ctxErr(ctx, fmt.Errorf("auth: %w", err))
		}
	}
	return c, closeAll, nil
}

// DefaultCheckEvery is how long Check keeps its answer when SMTP.CheckEvery is zero.
const DefaultCheckEvery = 10 * time.Second

// Check reports whether the server takes mail: it connects, greets, starts TLS and
// authenticates as Send does, then quits without sending. Its answer is kept for CheckEvery, so
// that frequent readiness probes open few connections.
func (s *SMTP) Check(ctx context.Context) error {
	every := s.CheckEvery
	if every <= 0 {
		every = DefaultCheckEvery
	}
	s.checkMu.Lock()
	defer s.checkMu.Unlock()
	if !s.checkedAt.IsZero() && time.Since(s.checkedAt) < every {
		return s.checkErr
	}
	err := func() error {
		c, done, err := s.open(ctx)
		if err != nil {
			return err
		}
		defer done()
		_ = c.Quit()
		return nil
	}()
	if err != nil {
		err = fmt.Errorf("smtp server %s: %w", s.Addr, classify(err))
	}
	s.checkedAt, s.checkErr = time.Now(), err
	return err
}

// ctxErr reports the context's error along with err when the context ended the conversation.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	// The connection's deadline is the context's: its timeout can fire a moment before the
	// context's own timer marks the context done.
	var ne net.Error
	if d, ok := ctx.Deadline(); ok && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(d) {
		return fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
	}
	return err
}

// classify marks permanent SMTP replies (5xx) so that queues do not retry them.
func classify(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && te.Code < 600 && !server.IsPermanent(err) {
		return server.Permanent(err)
	}
	return err
}
