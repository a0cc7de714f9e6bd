package mail_test

import (
	"bufio"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	v2mmail "github.com/v2m/v2m/pkg/server/mail"
)

// TestSMTPCheck: Check answers whether the server takes mail, and keeps its answer for
// CheckEvery, so readiness probes do not open a connection each.
func TestSMTPCheck(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	if err := (&v2mmail.SMTP{Addr: testenv.Get(t, testenv.SMTPAddr), From: "a@b.example"}).Check(ctx); err != nil {
		t.Fatalf("Check against Mailpit: %v", err)
	}

	// A server that answers, counting its connections.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns atomic.Int32
	var down atomic.Bool // answers 421 (service not available) while set
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				if down.Load() {
					c.Write([]byte("421 service not available\r\n"))
					return
				}
				c.Write([]byte("220 test ESMTP\r\n"))
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch line[:4] {
					case "EHLO":
						c.Write([]byte("250 test\r\n"))
					case "QUIT":
						c.Write([]byte("221 bye\r\n"))
						return
					default:
						c.Write([]byte("502 no\r\n"))
					}
				}
			}()
		}
	}()
	s := &v2mmail.SMTP{Addr: l.Addr().String(), From: "a@b.example", Timeout: 5 * time.Second, CheckEvery: time.Hour}
	for range 3 {
		if err := s.Check(ctx); err != nil {
			t.Fatalf("Check: %v", err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("3 checks opened %d connections, want 1 (the answer is kept)", n)
	}
	down.Store(true)
	s2 := &v2mmail.SMTP{Addr: l.Addr().String(), From: "a@b.example", Timeout: 5 * time.Second, CheckEvery: time.Millisecond}
	deadline := time.Now().Add(10 * time.Second)
	for s2.Check(ctx) == nil {
		if time.Now().After(deadline) {
			t.Fatal("Check of a server that answers 421 succeeds")
		}
	}
	// Nothing listens there any more.
	l.Close()
	if err := s2.Check(ctx); err == nil {
		t.Fatal("Check of a closed port succeeded")
	}
}
