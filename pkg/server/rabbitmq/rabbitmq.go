// Package rabbitmq implements server.Queue on RabbitMQ (AMQP 0-9-1, amqp091-go).
//
// # Topology
//
// Every topic T has three durable queues, declared by whoever uses T first (Publish and
// Consume both declare them, so services can start in any order):
//
//   - T: the work queue. Messages are persistent and every Publish waits for the broker's
//     publisher confirm, so a nil error means the message is on disk.
//   - T.retry.<ms>: failed deliveries wait here for their backoff, then dead-letter back to
//     T through the default exchange. There is one such delay queue per step of backoff,
//     declared when first used, with a queue-level x-message-ttl of <ms> milliseconds: every
//     message in it waits the same time, so none waits behind another's longer delay. A
//     backoff is rounded to the nearest step of 10 ms × 2^k (within a factor of √2, which
//     keeps some of its jitter), so a topic has a few of them (about ten with the defaults).
//   - T.retry: where earlier versions put every retry with a per-message expiration. It is
//     still declared, with its old arguments, so that messages waiting there come back, and
//     is used again only when the broker refuses a delay queue (declared elsewhere with other
//     arguments).
//   - T.dlq: deliveries that failed for good, with the headers x-v2m-error and
//     x-v2m-attempt saying why and after how many attempts.
//
// The attempt number travels in the header x-v2m-attempt. A delivery the broker redelivers
// (its consumer died, or its channel closed before the ack) counts as an attempt as well: it
// is moved back to T with the next attempt number before the handler sees it, so a message
// that crashes its consumer every time still ends in T.dlq after MaxAttempts.
//
// Config.QueueType chooses the type of these queues: classic (declared without arguments) or
// quorum (x-queue-type: quorum, replicated on every node of a broker cluster, so that a node
// drain loses no message). The type of an existing queue is fixed: switching a deployment
// from one to the other means deleting its queues first, while they are empty.
//
// Note that RabbitMQ expires messages only at the head of a queue: with per-message
// expirations in one queue a delivery waits at least as long as the one in front of it, which
// is why each delay has a queue of its own.
//
// # Job updates
//
// Queue.Updates gives the server.JobUpdates of a fanout exchange (v2m.job-updates, not
// durable): converters publish every change of a job's state and progress there, without
// confirms and not persisted, and each gateway binds an exclusive, auto-delete queue of its
// own (at most 10 000 messages, the oldest dropped first). No queue exists while no gateway
// listens, so nothing piles up; an update published then is lost, and gateways read the job
// store besides.
//
// # Connection recovery
//
// A Queue owns one connection with heartbeats and re-dials it with backoff whenever it
// drops (broker restart, network cut), re-declaring topology and re-opening channels;
// consumers resume by themselves. Publish waits for the connection during an outage, up to
// its context's deadline or Config.PublishTimeout, whichever is sooner, and then returns an
// error: callers fall back (the gateway leaves the job queued for a sweeper).
//
// amqp091-go v1.16.0 has a built-in Config.Recovery, still marked experimental. It gives up
// after a fixed number of retries (5 × 5 s by default), and it reuses the Channel values
// across connections without tracking which connection a delivery came from: the late ack
// of a long handler would reach the new channel with a delivery tag that channel never
// issued, which the broker answers by closing it (PRECONDITION_FAILED). This package
// therefore runs its own loop on NotifyClose, with a fresh channel and consumer per
// connection, so a stale ack can only fail on its own dead channel.
//
// # Long handlers
//
// A handler may run longer than the broker's consumer_timeout (30 minutes by default). The
// broker then closes the consumer's channel and requeues the delivery: nothing is lost. The
// consumer opens a new channel and goes on; the delivery comes back marked redelivered and
// counts as one more attempt, while the first handler finishes. Its eventual ack fails on the
// dead channel; that is logged and ignored, not treated as a crash. Handlers must therefore
// be idempotent, which at-least-once delivery requires anyway (the job store's
// compare-and-set states make a second conversion of a finished job a no-op). Raise
// consumer_timeout on the broker for jobs that routinely take longer.
package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/tracing"
)

// Message headers.
const (
	HeaderAttempt = "x-v2m-attempt" // the attempt number of the next delivery, from 1
	HeaderError   = "x-v2m-error"   // why the last attempt failed
	HeaderDeadAt  = "x-v2m-dead-at" // when it was dead-lettered, in Unix milliseconds
)

// Suffixes of a topic's retry and dead-letter queues.
const (
	RetrySuffix = ".retry"
	DLQSuffix   = ".dlq"
)

// Defaults of Config. MaxAttempts and Backoff default to server.DefaultMaxAttempts and
// server.DefaultBackoff, the retry policy of every queue.
const (
	DefaultHeartbeat      = 10 * time.Second
	DefaultPublishTimeout = 10 * time.Second
)

// dialTimeout bounds one connection attempt, TCP connect and AMQP handshake. A broker that
// is still booting may accept TCP and stall the handshake; a short bound retries it sooner.
const dialTimeout = 15 * time.Second

// ErrClosed is returned by a Queue's methods after Close.
var ErrClosed = errors.New("rabbitmq: queue closed")

// Event is something a Queue reports to its Observer.
type Event string

// The events.
const (
	EventPublished     Event = "published"      // a Publish was confirmed
	EventPublishFailed Event = "publish_failed" // a Publish returned an error
	EventRedelivered   Event = "redelivered"    // the broker redelivered a message
	EventRetried       Event = "retried"        // a failed delivery went to T.retry
	EventDeadLettered  Event = "dead_lettered"  // a delivery went to T.dlq
	EventReconnected   Event = "reconnected"    // the connection was re-established (topic "")
)

// Observer receives the Queue's events, for metrics. It must be quick and safe for
// concurrent use.
type Observer interface {
	Observe(topic string, e Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(topic string, e Event)

// Observe calls f.
func (f ObserverFunc) Observe(topic string, e Event) { f(topic, e) }

// Config configures a Queue. Only URL is required.
type Config struct {
	URL string // amqp://user:pass@host:port/vhost
	// MaxAttempts is how many deliveries a message gets before it is dead-lettered.
	MaxAttempts int
	// Backoff returns how long a message waits in T.retry after its attempt-th delivery
	// failed. Default: server.DefaultBackoff.
	Backoff   func(attempt int) time.Duration
	Logger    *slog.Logger
	Heartbeat time.Duration // DefaultHeartbeat when zero
	// PublishTimeout bounds a Publish (waiting for a connection and for the confirm) when
	// its context has no sooner deadline. DefaultPublishTimeout when zero.
	PublishTimeout time.Duration
	Observer       Observer // optional
	// OnReconnect, when set, is called (on a goroutine of its own) each time the connection is
	// back after it was lost at lostAt: the gateway publishes again the jobs whose publish
	// failed meanwhile.
	OnReconnect func(lostAt time.Time)
	// Name shows in the broker's connection list.
	Name string
	// TracerProvider, when set, records a producer span per Publish; its trace context
	// travels in the message's headers (traceparent, tracestate, baggage), also through
	// retries, and Consume hands it to the handler's ctx.
	TracerProvider trace.TracerProvider
	// QueueType is the type of the durable queues of every topic: QueueClassic (the
	// default, also when empty) or QueueQuorum, replicated on a cluster of brokers. A queue
	// that exists with another type is not converted: the declaration fails.
	QueueType string
}

// Queue types of Config.QueueType.
const (
	QueueClassic = "classic"
	QueueQuorum  = "quorum"
)

// queueArgs returns the declaration arguments that give a durable queue its type. Classic
// queues are declared without any, as before the setting existed, so that queues declared
// then stay equivalent.
//
// A quorum queue also gets a delivery limit far above any use: from RabbitMQ 4.0 quorum queues
// drop (or dead-letter) a message delivered more than 20 times by default, and v2m hands
// messages back on purpose (a converter shutting down, a listing of the dead letters, which
// returns each letter it reads), counting attempts itself. -1, which disables the limit on 4.x,
// drops every requeued message on 3.x, so a large number it is.
func queueArgs(queueType string) amqp.Table {
	if queueType == QueueQuorum {
		return amqp.Table{"x-queue-type": QueueQuorum, "x-delivery-limit": int64(quorumDeliveryLimit)}
	}
	return nil
}

// quorumDeliveryLimit is the delivery limit of quorum queues: in effect none.
const quorumDeliveryLimit = 1 << 30

// withArgs returns base plus extra (base may be nil).
func withArgs(base, extra amqp.Table) amqp.Table {
	if len(extra) == 0 {
		return base
	}
	out := amqp.Table{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// Queue is a server.Queue on RabbitMQ. It is safe for concurrent use.
type Queue struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	conn     *amqp.Connection // nil while disconnected
	up       chan struct{}    // closed while conn is set; replaced when it drops
	declared map[string]bool  // topics declared on conn
	pubChans []*amqp.Channel  // idle confirm-mode channels on conn
	closed   bool
}

var _ server.Queue = (*Queue)(nil)

// Dial connects to the broker, retrying with backoff until ctx ends, and keeps the
// connection up until Close.
func Dial(ctx context.Context, cfg Config) (*Queue, error) {
	if cfg.URL == "" {
		return nil, errors.New("rabbitmq: no URL")
	}
	if _, err := amqp.ParseURI(cfg.URL); err != nil {
		// The parser's error quotes the URL, password included.
		return nil, errors.New("rabbitmq: the URL is malformed (check the password for characters that need %-encoding)")
	}
	switch cfg.QueueType {
	case "":
		cfg.QueueType = QueueClassic
	case QueueClassic, QueueQuorum:
	default:
		return nil, fmt.Errorf("rabbitmq: queue type %q is neither %s nor %s", cfg.QueueType, QueueClassic, QueueQuorum)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = server.DefaultMaxAttempts
	}
	if cfg.Backoff == nil {
		cfg.Backoff = server.DefaultBackoff
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	if cfg.Name == "" {
		cfg.Name = "v2m"
	}
	q := &Queue{cfg: cfg, log: cfg.Logger, up: make(chan struct{})}
	q.ctx, q.cancel = context.WithCancel(context.Background())

	var conn *amqp.Connection
	err := retry(ctx, func() error {
		var err error
		conn, err = q.dial(ctx)
		if err != nil {
			q.log.WarnContext(ctx, "rabbitmq dial failed", "err", err)
		}
		return err
	})
	if err != nil {
		q.cancel()
		return nil, fmt.Errorf("rabbitmq dial %s: %w", redact(cfg.URL), err)
	}
	q.setConn(conn)
	q.wg.Add(1)
	go q.supervise(conn)
	return q, nil
}

// dial opens one connection; ctx bounds the TCP connect and the handshake.
func (q *Queue) dial(ctx context.Context) (*amqp.Connection, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(q.cfg.Name)
	return amqp.DialConfig(q.cfg.URL, amqp.Config{
		Heartbeat:  q.cfg.Heartbeat,
		Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			deadline := time.Now().Add(dialTimeout)
			if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
				deadline = d
			}
			d := net.Dialer{Deadline: deadline}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Bounds the handshake; amqp091 clears it once the connection is open.
			if err := c.SetDeadline(deadline); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	})
}

func (q *Queue) setConn(conn *amqp.Connection) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.conn = conn
	q.declared = map[string]bool{}
	q.pubChans = nil
	close(q.up)
}

// supervise waits for the connection to drop and dials a new one, until Close.
func (q *Queue) supervise(conn *amqp.Connection) {
	defer q.wg.Done()
	var lostAt time.Time
	for {
		lost := conn.NotifyClose(make(chan *amqp.Error, 1))
		select {
		case <-q.ctx.Done():
			_ = conn.Close()
			return
		case err := <-lost:
			lostAt = time.Now()
			q.mu.Lock()
			q.conn = nil
			q.pubChans = nil
			q.up = make(chan struct{})
			q.mu.Unlock()
			q.log.Warn("rabbitmq connection lost; reconnecting", "err", err)
		}
		err := retry(q.ctx, func() error {
			c, err := q.dial(q.ctx)
			if err != nil {
				q.log.Debug("rabbitmq reconnect failed", "err", err)
				return err
			}
			conn = c
			return nil
		})
		if err != nil { // closed
			return
		}
		q.setConn(conn)
		q.log.Info("rabbitmq reconnected", "down_for", time.Since(lostAt).Round(time.Millisecond))
		q.observe("", EventReconnected)
		if f := q.cfg.OnReconnect; f != nil {
			go f(lostAt)
		}
	}
}

// retry calls f until it succeeds or ctx ends, waiting 100 ms, 200 ms, … up to 2 s between.
func retry(ctx context.Context, f func() error) error {
	wait := 100 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// connection returns the live connection, waiting for a reconnect until ctx ends.
func (q *Queue) connection(ctx context.Context) (*amqp.Connection, error) {
	for {
		q.mu.Lock()
		conn, up, closed := q.conn, q.up, q.closed
		q.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if conn != nil && !conn.IsClosed() {
			return conn, nil
		}
		var recheck <-chan time.Time
		if conn != nil { // dropped a moment ago; the supervisor has not noticed yet
			up, recheck = nil, time.After(10*time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("rabbitmq not connected: %w", ctx.Err())
		case <-q.ctx.Done():
			return nil, ErrClosed
		case <-up:
		case <-recheck:
		}
	}
}

// Ping checks that the broker answers, by opening and closing a channel.
func (q *Queue) Ping(ctx context.Context) error {
	q.mu.Lock()
	conn, closed := q.conn, q.closed
	q.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if conn == nil || conn.IsClosed() {
		return errors.New("rabbitmq: not connected")
	}
	done := make(chan error, 1)
	go func() {
		ch, err := conn.Channel()
		if err == nil {
			err = ch.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("rabbitmq ping: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rabbitmq ping: %w", ctx.Err())
	}
}

// Close stops the connection supervisor and closes the connection. Running Consume calls
// see their channel close and return ErrClosed once their handlers are done; cancel their
// contexts first for a graceful stop.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	conn := q.conn
	q.mu.Unlock()
	q.cancel()
	q.wg.Wait()
	if conn != nil && !conn.IsClosed() {
		_ = conn.Close()
	}
	return nil
}

func (q *Queue) observe(topic string, e Event) {
	if q.cfg.Observer != nil {
		q.cfg.Observer.Observe(topic, e)
	}
}

// declare makes sure topic's queues exist, of type queueType. ch is any open channel on conn.
func declare(ch *amqp.Channel, topic, queueType string) error {
	typ := queueArgs(queueType)
	if _, err := ch.QueueDeclare(topic, true, false, false, false, typ); err != nil {
		return fmt.Errorf("declare queue %s: %w", topic, err)
	}
	retryArgs := amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": topic}
	if _, err := ch.QueueDeclare(topic+RetrySuffix, true, false, false, false, withArgs(retryArgs, typ)); err != nil {
		return fmt.Errorf("declare queue %s%s: %w", topic, RetrySuffix, err)
	}
	if _, err := ch.QueueDeclare(topic+DLQSuffix, true, false, false, false, typ); err != nil {
		return fmt.Errorf("declare queue %s%s: %w", topic, DLQSuffix, err)
	}
	return nil
}

// Steps of the delay queues: delayUnit × 2^k, k from 0 to maxDelayStep (about 46 hours).
const (
	delayUnit    = 10 * time.Millisecond
	maxDelayStep = 24
)

// delayStep returns the step nearest to d, by ratio.
func delayStep(d time.Duration) time.Duration {
	if d <= delayUnit {
		return delayUnit
	}
	k := min(math.Round(math.Log2(float64(d)/float64(delayUnit))), maxDelayStep)
	return delayUnit << int(k)
}

// DelayQueue names the queue in which a delivery of topic waits about wait (the nearest step)
// before it comes back to topic.
func DelayQueue(topic string, wait time.Duration) string {
	return topic + RetrySuffix + "." + strconv.FormatInt(delayStep(wait).Milliseconds(), 10)
}

// DelayQueues names every delay queue topic may have, shortest delay first.
func DelayQueues(topic string) []string {
	names := make([]string, 0, maxDelayStep+1)
	for k := range maxDelayStep + 1 {
		names = append(names, DelayQueue(topic, delayUnit<<k))
	}
	return names
}

// declareDelay makes sure the delay queue exists, on a channel of its own: a refusal
// (PRECONDITION_FAILED for a queue declared elsewhere with other arguments) closes the
// channel it happens on.
func (q *Queue) declareDelay(ctx context.Context, topic, queue string, wait time.Duration) error {
	conn, err := q.connection(ctx)
	if err != nil {
		return err
	}
	q.mu.Lock()
	declared := q.conn == conn && q.declared[queue]
	q.mu.Unlock()
	if declared {
		return nil
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	args := withArgs(amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": topic,
		"x-message-ttl": delayStep(wait).Milliseconds()}, queueArgs(q.cfg.QueueType))
	if _, err := ch.QueueDeclare(queue, true, false, false, false, args); err != nil {
		return fmt.Errorf("declare queue %s: %w", queue, err)
	}
	q.mu.Lock()
	if q.conn == conn {
		q.declared[queue] = true
	}
	q.mu.Unlock()
	return nil
}

// publishRetry puts msg in topic's delay queue for wait. When the broker refuses that queue,
// msg waits in topic's T.retry with a per-message expiration instead, as it did before delay
// queues: later, maybe, but not lost.
func (q *Queue) publishRetry(ctx context.Context, topic string, wait time.Duration, msg amqp.Publishing) error {
	queue := DelayQueue(topic, wait)
	if err := q.declareDelay(ctx, topic, queue, wait); err != nil {
		if _, refused := setupErr(err).(refusedError); !refused {
			return err
		}
		q.log.Warn("rabbitmq refuses the delay queue; this retry waits in "+topic+RetrySuffix+" instead", "queue", queue, "err", err)
		msg.Expiration = strconv.FormatInt(max(wait.Milliseconds(), 1), 10)
		queue = topic + RetrySuffix
	}
	return q.publish(ctx, topic, queue, msg)
}

// validTopic rejects names that cannot be queues (AMQP short strings, no "amq." prefix).
func validTopic(topic string) error {
	if topic == "" || len(topic)+len(RetrySuffix)+11 > 255 || len(topic) >= 4 && topic[:4] == "amq." {
		return server.Errorf(server.EINVALID, "bad topic %q", topic)
	}
	return nil
}

// Publish stores body on topic durably: it returns nil once the broker has confirmed the
// persistent message.
func (q *Queue) Publish(ctx context.Context, topic string, body []byte) error {
	if err := validTopic(topic); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	ctx, cancel := context.WithTimeout(ctx, q.cfg.PublishTimeout)
	defer cancel()
	ctx, span, carrier := tracing.StartPublish(ctx, q.cfg.TracerProvider, "rabbitmq", topic)
	defer span.End()
	headers := amqp.Table{HeaderAttempt: int32(1)}
	for k, v := range carrier {
		headers[k] = v
	}
	err := q.publish(ctx, topic, topic, amqp.Publishing{Headers: headers, Body: body})
	if err != nil {
		q.observe(topic, EventPublishFailed)
		err = fmt.Errorf("publish to %s: %w", topic, err)
		tracing.Fail(span, err)
		return err
	}
	q.observe(topic, EventPublished)
	return nil
}

// publish sends msg to queue (of topic's topology) and waits for the confirm.
func (q *Queue) publish(ctx context.Context, topic, queue string, msg amqp.Publishing) error {
	ch, err := q.pubChannel(ctx, topic)
	if err != nil {
		return err
	}
	msg.DeliveryMode = amqp.Persistent
	if msg.MessageId == "" {
		msg.MessageId = server.NewID()
	}
	if msg.Timestamp.IsZero() {
		msg.Timestamp = time.Now()
	}
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, msg)
	if err != nil {
		_ = ch.Close()
		return err
	}
	ack, err := dc.WaitContext(ctx)
	if err != nil {
		// The confirm may still come; this channel's sequence is no longer ours to reuse.
		_ = ch.Close()
		return err
	}
	if !ack {
		_ = ch.Close()
		return errors.New("broker did not confirm the message (nack or channel closed)")
	}
	q.putPubChannel(ch)
	return nil
}

// pubChannel returns an idle confirm-mode channel on which topic's queues are declared.
func (q *Queue) pubChannel(ctx context.Context, topic string) (*amqp.Channel, error) {
	for {
		conn, err := q.connection(ctx)
		if err != nil {
			return nil, err
		}
		q.mu.Lock()
		var ch *amqp.Channel
		if q.conn == conn && len(q.pubChans) > 0 {
			ch = q.pubChans[len(q.pubChans)-1]
			q.pubChans = q.pubChans[:len(q.pubChans)-1]
		}
		declared := q.declared[topic]
		q.mu.Unlock()
		if ch != nil && ch.IsClosed() {
			continue
		}
		if ch == nil {
			if ch, err = conn.Channel(); err != nil {
				if conn.IsClosed() && ctx.Err() == nil {
					continue // the connection just dropped; wait for the next one
				}
				return nil, fmt.Errorf("open channel: %w", err)
			}
			if err := ch.Confirm(false); err != nil {
				_ = ch.Close()
				return nil, fmt.Errorf("confirm mode: %w", err)
			}
		}
		if !declared {
			if err := declare(ch, topic, q.cfg.QueueType); err != nil {
				_ = ch.Close()
				return nil, err
			}
			q.mu.Lock()
			if q.conn == conn {
				q.declared[topic] = true
			}
			q.mu.Unlock()
		}
		return ch, nil
	}
}

func (q *Queue) putPubChannel(ch *amqp.Channel) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.conn != nil && !ch.IsClosed() && len(q.pubChans) < 16 {
		q.pubChans = append(q.pubChans, ch)
		return
	}
	_ = ch.Close()
}

// redact hides the password of an AMQP URL for logs and errors.
func redact(u string) string {
	uri, err := amqp.ParseURI(u)
	if err != nil {
		return "(bad url)"
	}
	uri.Password = "xxxxx"
	return uri.String()
}

// attemptOf reads the attempt header, 1 when it is absent or malformed.
func attemptOf(h amqp.Table) int {
	var n int64
	switch v := h[HeaderAttempt].(type) {
	case int8:
		n = int64(v)
	case int16:
		n = int64(v)
	case int32:
		n = int64(v)
	case int64:
		n = v
	case int:
		n = int64(v)
	case uint8:
		n = int64(v)
	case uint16:
		n = int64(v)
	case uint32:
		n = int64(v)
	case string:
		n, _ = strconv.ParseInt(v, 10, 32)
	}
	if n < 1 || n > 1<<20 {
		return 1
	}
	return int(n)
}
