package rabbitmq_test

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/rabbitmq"
	"github.com/v2m/v2m/pkg/server/servertest"
)

// TestUpdatesContract runs the JobUpdates suite with each peer on a connection of its own,
// as a converter and gateway replicas are.
func TestUpdatesContract(t *testing.T) {
	url := testenv.Get(t, testenv.AMQPURL)
	servertest.TestJobUpdates(t, func(t *testing.T) func() server.JobUpdates {
		exchange := "test-updates-" + server.NewID()
		t.Cleanup(func() { deleteExchange(url, exchange) })
		return func() server.JobUpdates {
			return dial(t, rabbitmq.Config{URL: url}).Updates(exchange)
		}
	})
}

func deleteExchange(url, name string) {
	onChannel(url, func(ch *amqp.Channel) { _ = ch.ExchangeDelete(name, false, false) })
}

// cutter forwards TCP connections to the broker and can cut all of them at once, as a
// network that breaks does; new connections go through again.
type cutter struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutter(t *testing.T, broker string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln}
	t.Cleanup(func() { ln.Close(); c.cut() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", broker)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return c
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

// TestUpdatesSubscriptionSurvivesACut: when a subscriber's connection breaks, it binds again
// once its Queue has reconnected, and updates reach it as before.
func TestUpdatesSubscriptionSurvivesACut(t *testing.T) {
	raw := testenv.Get(t, testenv.AMQPURL)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	exchange := "test-updates-" + server.NewID()
	t.Cleanup(func() { deleteExchange(raw, exchange) })
	cut := newCutter(t, u.Host)
	via := *u
	via.Host = cut.ln.Addr().String()
	sub := dial(t, rabbitmq.Config{URL: via.String()}).Updates(exchange)
	pub := dial(t, rabbitmq.Config{URL: raw}).Updates(exchange)
	ch, err := sub.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// arrives publishes probes until one reaches the subscriber: right after a cut, the
	// subscriber is not bound yet, and what is published meanwhile is lost, by design.
	arrives := func(what string) {
		t.Helper()
		deadline := time.After(patience)
		for n := 0; ; n++ {
			probe := server.JobUpdate{Kind: server.UpdateState, JobID: fmt.Sprintf("%s-%d", what, n)}
			if err := pub.Publish(t.Context(), probe); err != nil {
				t.Fatal(err)
			}
			select {
			case got, ok := <-ch:
				if !ok {
					t.Fatalf("%s: the subscription ended", what)
				}
				if strings.HasPrefix(got.JobID, what+"-") {
					return
				}
			case <-time.After(100 * time.Millisecond):
			case <-deadline:
				t.Fatalf("%s: no update reached the subscriber", what)
			}
		}
	}
	arrives("before")
	cut.cut()
	arrives("after")
}
