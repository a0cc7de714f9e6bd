package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/tracing"
)

// QueueConfig tunes the durable queue.
type QueueConfig struct {
	MaxAttempts int                             // deliveries before a message is dead; default 5
	Backoff     func(attempt int) time.Duration // wait before redelivery after a failed attempt
	Lease       time.Duration                   // how long a delivery is held without renewal; default 30 s
	Poll        time.Duration                   // how often idle consumers look for due messages; default 1 s
	Logger      *slog.Logger
	// TracerProvider, when set, records a producer span per Publish; the message keeps its
	// trace context, which Consume hands to the handler's ctx.
	TracerProvider trace.TracerProvider
}

// Queue is a durable, at-least-once server.Queue in the messages table. A delivery is leased
// while its handler runs and the lease is renewed; a process that dies leaves leases that
// expire (or that Consume releases at start, since only one process uses the database), so
// the message is delivered again.
type Queue struct {
	db  *DB
	cfg QueueConfig
}

// Queue returns the durable queue in this database.
func (d *DB) Queue(cfg QueueConfig) *Queue {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = server.DefaultMaxAttempts
	}
	if cfg.Backoff == nil {
		cfg.Backoff = server.DefaultBackoff
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Queue{db: d, cfg: cfg}
}

func (q *Queue) wakeChan(topic string) chan struct{} {
	q.db.qmu.Lock()
	defer q.db.qmu.Unlock()
	c, ok := q.db.wake[topic]
	if !ok {
		c = make(chan struct{}, 1)
		q.db.wake[topic] = c
	}
	return c
}

// Publish implements server.Queue: the message is committed before it returns.
func (q *Queue) Publish(ctx context.Context, topic string, body []byte) error {
	ctx, span, carrier := tracing.StartPublish(ctx, q.cfg.TracerProvider, "sqlite", topic)
	defer span.End()
	tc := ""
	if len(carrier) > 0 {
		b, err := json.Marshal(carrier)
		if err != nil {
			return fmt.Errorf("publish to %s: encode trace context: %w", topic, err)
		}
		tc = string(b)
	}
	now := ms(q.db.now())
	if _, err := q.db.db.ExecContext(ctx, `INSERT INTO messages (topic, body, not_before, created_at, trace_context) VALUES (?, ?, ?, ?, ?)`,
		topic, body, now, now, tc); err != nil {
		err = fmt.Errorf("publish to %s: %w", topic, err)
		tracing.Fail(span, err)
		return err
	}
	select {
	case q.wakeChan(topic) <- struct{}{}:
	default:
	}
	return nil
}

// Depth returns how many live (not dead) messages topic holds, and how many are dead.
func (q *Queue) Depth(ctx context.Context, topic string) (live, dead int, err error) {
	err = q.db.db.QueryRowContext(ctx, `SELECT coalesce(sum(dead = 0), 0), coalesce(sum(dead = 1), 0) FROM messages WHERE topic = ?`, topic).
		Scan(&live, &dead)
	if err != nil {
		return 0, 0, fmt.Errorf("queue depth: %w", err)
	}
	return live, dead, nil
}

// Consume implements server.Queue.
func (q *Queue) Consume(ctx context.Context, topic string, concurrency int, h server.Handler) error {
	if concurrency < 1 {
		concurrency = 1
	}
	q.db.qmu.Lock()
	if q.db.consuming[topic] {
		q.db.qmu.Unlock()
		return fmt.Errorf("topic %s already has a consumer", topic)
	}
	q.db.consuming[topic] = true
	q.db.qmu.Unlock()
	defer func() { q.db.qmu.Lock(); delete(q.db.consuming, topic); q.db.qmu.Unlock() }()

	// This process is the database's only user, so every lease still held was held by a
	// process that is gone.
	if _, err := q.db.db.ExecContext(ctx, `UPDATE messages SET lease_until = 0 WHERE topic = ? AND dead = 0`, topic); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("release leases: %w", err)
	}
	wake := q.wakeChan(topic)
	slots := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	ticker := time.NewTicker(q.cfg.Poll)
	defer ticker.Stop()
	for {
		// Take a slot first, so that a message is leased only when a handler can run it.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		m, err := q.lease(ctx, topic)
		if err != nil || m == nil {
			<-slots
			if err != nil && ctx.Err() == nil {
				q.cfg.Logger.Error("queue lease failed", "topic", topic, "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-wake:
			case <-ticker.C:
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			q.run(ctx, m, h)
		}()
	}
}

type message struct {
	id      int64
	topic   string
	body    []byte
	attempt int
	trace   string // the trace context as JSON, or ""
}

// traceCarrier decodes the message's trace context; a damaged one is dropped, not the message.
func (m *message) traceCarrier() tracing.Carrier {
	var raw map[string]any
	if m.trace == "" || json.Unmarshal([]byte(m.trace), &raw) != nil {
		return nil
	}
	return tracing.CarrierFrom(func(k string) (any, bool) { v, ok := raw[k]; return v, ok })
}

func (q *Queue) lease(ctx context.Context, topic string) (*message, error) {
	now := q.db.now()
	m := message{topic: topic}
	err := q.db.db.QueryRowContext(ctx, `UPDATE messages SET attempt = attempt + 1, lease_until = ?
		WHERE id = (SELECT id FROM messages WHERE topic = ? AND dead = 0 AND not_before <= ? AND lease_until < ? ORDER BY id LIMIT 1)
		RETURNING id, body, attempt, trace_context`, ms(now.Add(q.cfg.Lease)), topic, ms(now), ms(now)).Scan(&m.id, &m.body, &m.attempt, &m.trace)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &m, nil
}

func (q *Queue) run(ctx context.Context, m *message, h server.Handler) {
	// Renew the lease while the handler runs.
	renewCtx, stopRenew := context.WithCancel(context.WithoutCancel(ctx))
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(q.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-renewCtx.Done():
				return
			case <-t.C:
				if _, err := q.db.db.ExecContext(renewCtx, `UPDATE messages SET lease_until = ? WHERE id = ?`,
					ms(q.db.now().Add(q.cfg.Lease)), m.id); err != nil && renewCtx.Err() == nil {
					q.cfg.Logger.Warn("queue lease renewal failed", "topic", m.topic, "err", err)
				}
			}
		}
	}()
	err := h(tracing.Extract(ctx, m.traceCarrier()), server.Delivery{Topic: m.topic, Body: m.body, Attempt: m.attempt, MaxAttempts: q.cfg.MaxAttempts})
	stopRenew()
	<-renewed

	// Settle even when ctx is done: the outcome is known and must be recorded.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var serr error
	switch {
	case err == nil:
		_, serr = q.db.db.ExecContext(sctx, `DELETE FROM messages WHERE id = ?`, m.id)
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		// Shutting down: hand the message back without counting this attempt.
		_, serr = q.db.db.ExecContext(sctx, `UPDATE messages SET lease_until = 0, attempt = attempt - 1 WHERE id = ?`, m.id)
	case server.IsPermanent(err) || m.attempt >= q.cfg.MaxAttempts:
		q.cfg.Logger.Warn("message dead-lettered", "topic", m.topic, "attempt", m.attempt, "err", err)
		_, serr = q.db.db.ExecContext(sctx, `UPDATE messages SET dead = 1, lease_until = 0, error = ?, dead_at = ? WHERE id = ?`,
			err.Error(), ms(q.db.now()), m.id)
	default:
		wait := q.cfg.Backoff(m.attempt)
		q.cfg.Logger.Info("message will be retried", "topic", m.topic, "attempt", m.attempt, "in", wait.String(), "err", err)
		_, serr = q.db.db.ExecContext(sctx, `UPDATE messages SET lease_until = 0, not_before = ?, error = ? WHERE id = ?`,
			ms(q.db.now().Add(wait)), err.Error(), m.id)
	}
	if serr != nil {
		q.cfg.Logger.Error("queue settle failed; the message will be delivered again", "topic", m.topic, "err", serr)
	}
}
