package rabbitmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/v2m/v2m/pkg/server"
)

// DefaultUpdatesExchange is the fanout exchange of job updates.
const DefaultUpdatesExchange = "v2m.job-updates"

// updatesQueueMax bounds the messages waiting in a subscriber's queue: a gateway that falls
// behind loses the oldest updates (it reads the job store anyway) instead of piling them up.
const updatesQueueMax = 10000

// Updates is a server.JobUpdates on a fanout exchange of the Queue's connection. Updates
// are transient: published without confirms and not persisted, routed to no queue when no
// one subscribes. Each Subscribe binds an exclusive, auto-delete, server-named queue of its
// own, which the broker deletes when the subscriber goes; after a reconnect it binds a new
// one (the updates published meanwhile are lost).
type Updates struct {
	q        *Queue
	exchange string

	mu sync.Mutex
	ch *amqp.Channel // the publishing channel; nil until first needed or after it closed
}

var _ server.JobUpdates = (*Updates)(nil)

// Updates returns the job updates of exchange ("" for DefaultUpdatesExchange) on q's
// connection.
func (q *Queue) Updates(exchange string) *Updates {
	if exchange == "" {
		exchange = DefaultUpdatesExchange
	}
	return &Updates{q: q, exchange: exchange}
}

func declareUpdates(ch *amqp.Channel, exchange string) error {
	if err := ch.ExchangeDeclare(exchange, amqp.ExchangeFanout, false, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", exchange, err)
	}
	return nil
}

// Publish sends u to the exchange. It does not wait for a connection: while the broker is
// down it fails at once.
func (u *Updates) Publish(ctx context.Context, up server.JobUpdate) error {
	body, err := json.Marshal(up)
	if err != nil {
		return fmt.Errorf("encode job update: %w", err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ch == nil || u.ch.IsClosed() {
		u.q.mu.Lock()
		conn := u.q.conn
		u.q.mu.Unlock()
		if conn == nil || conn.IsClosed() {
			return errors.New("publish job update: rabbitmq not connected")
		}
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("publish job update: open channel: %w", err)
		}
		if err := declareUpdates(ch, u.exchange); err != nil {
			_ = ch.Close()
			return fmt.Errorf("publish job update: %w", err)
		}
		u.ch = ch
	}
	err = u.ch.PublishWithContext(ctx, u.exchange, "", false, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Transient, Timestamp: time.Now(), Body: body,
	})
	if err != nil {
		_ = u.ch.Close()
		u.ch = nil
		return fmt.Errorf("publish job update: %w", err)
	}
	return nil
}

// Subscribe binds a queue of its own to the exchange and returns its updates until ctx
// ends. A lost connection or channel is recovered: it binds again once the Queue has
// reconnected. Updates it cannot decode are dropped.
func (u *Updates) Subscribe(ctx context.Context) (<-chan server.JobUpdate, error) {
	deliveries, ch, err := u.bind(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan server.JobUpdate, 256)
	go func() {
		defer close(out)
		for {
			u.forward(ctx, deliveries, ch, out)
			_ = ch.Close()
			if ctx.Err() != nil {
				return
			}
			u.q.log.Warn("rabbitmq job updates subscription lost; binding again", "exchange", u.exchange)
			closed := false
			err := retry(ctx, func() error {
				var err error
				deliveries, ch, err = u.bind(ctx)
				if errors.Is(err, ErrClosed) {
					closed = true
					return nil
				}
				return err
			})
			if err != nil || closed {
				return // ctx ended, or the queue was closed
			}
		}
	}()
	return out, nil
}

// bind declares the exchange and a private queue bound to it, and consumes the queue.
func (u *Updates) bind(ctx context.Context) (<-chan amqp.Delivery, *amqp.Channel, error) {
	conn, err := u.q.connection(ctx)
	if err != nil {
		return nil, nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, nil, fmt.Errorf("open channel: %w", err)
	}
	fail := func(err error) (<-chan amqp.Delivery, *amqp.Channel, error) {
		_ = ch.Close()
		return nil, nil, err
	}
	if err := declareUpdates(ch, u.exchange); err != nil {
		return fail(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, amqp.Table{
		"x-max-length": int32(updatesQueueMax), "x-overflow": "drop-head",
	})
	if err != nil {
		return fail(fmt.Errorf("declare updates queue: %w", err))
	}
	if err := ch.QueueBind(q.Name, "", u.exchange, false, nil); err != nil {
		return fail(fmt.Errorf("bind updates queue: %w", err))
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		return fail(fmt.Errorf("consume updates queue: %w", err))
	}
	return deliveries, ch, nil
}

// forward passes deliveries on to out until ctx ends or the channel closes. A subscriber that
// does not keep up loses updates; the broker's queue is not held up by it.
func (u *Updates) forward(ctx context.Context, deliveries <-chan amqp.Delivery, ch *amqp.Channel, out chan<- server.JobUpdate) {
	lost := ch.NotifyClose(make(chan *amqp.Error, 1))
	for {
		select {
		case <-ctx.Done():
			return
		case <-lost:
			return
		case d, ok := <-deliveries:
			if !ok {
				return
			}
			var up server.JobUpdate
			if err := json.Unmarshal(d.Body, &up); err != nil || up.JobID == "" {
				u.q.log.Debug("rabbitmq job update dropped: malformed", "exchange", u.exchange)
				continue
			}
			select {
			case out <- up:
			default:
			}
		}
	}
}
