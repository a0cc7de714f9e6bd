package mail_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/pkg/server"
	v2mmail "github.com/v2m/v2m/pkg/server/mail"
)

func uniqueAddr() string { return "u-" + server.NewID() + "@example.test" }

type mailpitSummary struct {
	ID      string
	Subject string
}

type mailpitMessage struct {
	ID      string
	Subject string
	Text    string
	From    struct{ Name, Address string }
	To      []struct{ Name, Address string }
}

// fetch finds the one message sent to addr through Mailpit's API and returns it.
func fetch(t *testing.T, api, addr string) mailpitMessage {
	t.Helper()
	get := func(u string, v any) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("GET %s: %s %s", u, resp.Status, b)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
	}
	var found struct{ Messages []mailpitSummary }
	get(api+"/api/v1/search?query="+url.QueryEscape(fmt.Sprintf("to:%q", addr)), &found)
	if len(found.Messages) != 1 {
		t.Fatalf("Mailpit has %d messages to %s, want 1", len(found.Messages), addr)
	}
	var m mailpitMessage
	get(api+"/api/v1/message/"+url.PathEscape(found.Messages[0].ID), &m)
	return m
}

func TestSMTPSendToMailpit(t *testing.T) {
	t.Parallel()
	addr := testenv.Get(t, testenv.SMTPAddr)
	api := testenv.Get(t, testenv.MailpitAPI)
	to := uniqueAddr()
	subject := "Your MP3 is ready: «Vidéo été» ✓"
	body := "Hello,\n\nthe file vidéo.mp4 was converted.\nA long line " + strings.Repeat("x", 120) + "\n= end =\n"
	s := &v2mmail.SMTP{Addr: addr, From: "v2m <noreply@v2m.example>", TLS: v2mmail.TLSAuto}
	if err := s.Send(t.Context(), server.Mail{To: to, Subject: subject, Body: body}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := fetch(t, api, to)
	if m.Subject != subject {
		t.Errorf("subject = %q, want %q", m.Subject, subject)
	}
	if m.From.Address != "noreply@v2m.example" || m.From.Name != "v2m" {
		t.Errorf("from = %+v", m.From)
	}
	if len(m.To) != 1 || m.To[0].Address != to {
		t.Errorf("to = %+v", m.To)
	}
	if got := strings.ReplaceAll(m.Text, "\r\n", "\n"); strings.TrimRight(got, "\n") != strings.TrimRight(body, "\n") {
		t.Errorf("body = %q, want %q", got, body)
	}
}

func TestSMTPWithAuth(t *testing.T) {
	t.Parallel()
	addr := testenv.Get(t, testenv.SMTPAddr)
	api := testenv.Get(t, testenv.MailpitAPI)
	to := uniqueAddr()
	// Mailpit accepts any credentials; PLAIN over plain text is allowed to loopback only.
	s := &v2mmail.SMTP{Addr: addr, From: "noreply@v2m.example", User: "u", Password: "p", TLS: v2mmail.TLSNone, HelloName: "v2m.test"}
	if err := s.Send(t.Context(), server.Mail{To: to, Subject: "plain", Body: "ascii"}); err != nil {
		t.Fatalf("Send with auth: %v", err)
	}
	if m := fetch(t, api, to); m.Subject != "plain" || strings.TrimSpace(m.Text) != "ascii" {
		t.Fatalf("got %+v", m)
	}
}

func TestSMTPFailures(t *testing.T) {
	t.Parallel()
	addr := testenv.Get(t, testenv.SMTPAddr)
	ctx := t.Context()
	ok := server.Mail{To: uniqueAddr(), Subject: "s", Body: "b"}

	// Nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	err = (&v2mmail.SMTP{Addr: closed, From: "a@b.example", Timeout: 5 * time.Second}).Send(ctx, ok)
	if err == nil || server.IsPermanent(err) {
		t.Errorf("Send to a closed port = %v, want a transient error", err)
	}
	// An unknown host.
	if err := (&v2mmail.SMTP{Addr: "no-such-host.invalid:25", From: "a@b.example", Timeout: 5 * time.Second}).Send(ctx, ok); err == nil {
		t.Error("Send to an unknown host succeeded")
	}
	// Mailpit offers no STARTTLS: a required one fails, and so does implicit TLS.
	for _, mode := range []string{v2mmail.TLSStartTLS, v2mmail.TLSImplicit, "bogus"} {
		if err := (&v2mmail.SMTP{Addr: addr, From: "a@b.example", TLS: mode, Timeout: 5 * time.Second}).Send(ctx, ok); err == nil {
			t.Errorf("Send with TLS %q to a plain server succeeded", mode)
		}
	}
	// A cancelled context stops at once.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := (&v2mmail.SMTP{Addr: addr, From: "a@b.example"}).Send(cctx, ok); !errors.Is(err, context.Canceled) {
		t.Errorf("Send with a cancelled ctx = %v, want context.Canceled", err)
	}
}

// TestSMTPHangingServer: a server that accepts and never speaks is cut off by the ctx.
func TestSMTPHangingServer(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err = (&v2mmail.SMTP{Addr: l.Addr().String(), From: "a@b.example"}).Send(ctx, server.Mail{To: uniqueAddr(), Subject: "s"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send to a silent server = %v, want context.DeadlineExceeded", err)
	}
}

func TestHeaderInjectionRejected(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	o := &v2mmail.Outbox{Dir: dir, From: "noreply@v2m.example"}
	s := &v2mmail.SMTP{Addr: "127.0.0.1:1", From: "noreply@v2m.example"} // never dialled
	bad := []server.Mail{
		{To: "victim@example.test\r\nBcc: all@example.test", Subject: "s"},
		{To: "victim@example.test", Subject: "hi\r\nBcc: all@example.test"},
		{To: "victim@example.test", Subject: "hi\nX-Evil: 1"},
		{To: "victim@example.test", Subject: "hi\rX-Evil: 1"},
		{To: "not an address", Subject: "s"},
		{To: "", Subject: "s"},
		{To: "a@example.test, b@example.test", Subject: "two recipients"},
	}
	for _, m := range bad {
		for name, mailer := range map[string]server.Mailer{"outbox": o, "smtp": s} {
			err := mailer.Send(t.Context(), m)
			if !server.IsCode(err, server.EINVALID) || !server.IsPermanent(err) {
				t.Errorf("%s.Send(%q, %q) = %v, want a permanent %s", name, m.To, m.Subject, err, server.EINVALID)
			}
		}
	}
	if err := (&v2mmail.Outbox{Dir: dir, From: "x\r\nBcc: y@example.test"}).Send(t.Context(), server.Mail{To: "a@example.test"}); !server.IsCode(err, server.EINVALID) {
		t.Errorf("Outbox with a bad From = %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("rejected mail left %d files", len(entries))
	}
}

func TestOutboxWritesParseableMail(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "outbox") // created on first use
	var logs strings.Builder
	o := &v2mmail.Outbox{Dir: dir, From: "v2m <noreply@v2m.example>", Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	subject := "Conversion échouée"
	body := "Sorry,\nthe file could not be converted: no audio stream.\n"
	const n = 5
	for i := range n {
		if err := o.Send(t.Context(), server.Mail{To: fmt.Sprintf("user%d@example.test", i), Subject: subject, Body: body}); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n {
		t.Fatalf("outbox has %d entries, want %d", len(entries), n)
	}
	dec := new(mime.WordDecoder)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), ".eml") {
			t.Errorf("unexpected file %s (partial write?)", e.Name())
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		msg, err := mail.ReadMessage(f)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		got, err := dec.DecodeHeader(msg.Header.Get("Subject"))
		if err != nil || got != subject {
			t.Errorf("%s: subject %q (%v), want %q", e.Name(), got, err, subject)
		}
		if _, err := msg.Header.Date(); err != nil {
			t.Errorf("%s: Date: %v", e.Name(), err)
		}
		if from, err := msg.Header.AddressList("From"); err != nil || len(from) != 1 || from[0].Address != "noreply@v2m.example" {
			t.Errorf("%s: From %v %v", e.Name(), from, err)
		}
		for _, h := range []string{"To", "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"} {
			if msg.Header.Get(h) == "" {
				t.Errorf("%s: no %s header", e.Name(), h)
			}
		}
		raw, _ := io.ReadAll(msg.Body)
		f.Close()
		if strings.Contains(string(raw), "é") {
			t.Errorf("%s: body is not quoted-printable: %q", e.Name(), raw)
		}
	}
	if c := strings.Count(logs.String(), "mail written to outbox"); c != n {
		t.Errorf("logged %d lines, want %d:\n%s", c, n, logs.String())
	}
}

func TestOutboxUnwritableDir(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	o := &v2mmail.Outbox{Dir: filepath.Join(file, "sub"), From: "noreply@v2m.example"}
	if err := o.Send(t.Context(), server.Mail{To: "a@example.test", Subject: "s"}); err == nil {
		t.Fatal("Send into a path under a regular file succeeded")
	}
}
