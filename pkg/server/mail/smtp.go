package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
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
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return server.Permanent(fmt.Errorf("bad address: %w", err))
	}
	mode := s.TLS
	if mode == "" {
		mode = TLSAuto
	}
	switch mode {
	case TLSAuto, TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return server.Permanent(fmt.Errorf("unknown TLS mode %q", mode))
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
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	// A cancelled ctx interrupts whatever read or write is in progress.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

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
			return fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return ctxErr(ctx, err)
	}
	defer c.Close()
	hello := s.HelloName
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return ctxErr(ctx, fmt.Errorf("ehlo: %w", err))
	}
	if mode == TLSAuto || mode == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsConfig); err != nil {
				return ctxErr(ctx, fmt.Errorf("starttls: %w", err))
			}
		} else if mode == TLSStartTLS {
			return errors.New("server does not offer STARTTLS, and TLS mode starttls requires it")
		}
	}
	if s.User != "" {
		if err := c.Auth(smtp.PlainAuth("", s.User, s.Password, host)); err != nil {
			return ctxErr(ctx, fmt.Errorf("auth: %w", err))
		}
	}
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
