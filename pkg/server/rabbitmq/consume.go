package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/tracing"
)

// maxErrorHeader bounds the error text stored in a message header.
const maxErrorHeader = 1000

// Consume runs h on topic's messages, up to concurrency at once (the channel's prefetch is
// concurrency too), until ctx ends. Handlers get ctx itself: when it ends they should stop
// and return; Consume then takes no new message, waits for the running handlers, puts back
// the messages they did not finish (with the same attempt number) and returns nil.
//
// A lost channel or connection is recovered: Consume subscribes again once the Queue has
// reconnected. It returns an error only for a topology the broker refuses (a queue declared
// elsewhere with other arguments, missing permissions), or ErrClosed after Close.
func (q *Queue) Consume(ctx context.Context, topic string, concurrency int, h server.Handler) error {
	if err := validTopic(topic); err != nil {
		return err
	}
	concurrency = max(concurrency, 1)
	sem := make(chan struct{}, concurrency)
	var handlers sync.WaitGroup
	defer handlers.Wait()
	pause := 100 * time.Millisecond
	for {
		started := time.Now()
		err := q.consumeOnce(ctx, topic, sem, &handlers, h)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrClosed):
			return ErrClosed
		case errors.As(err, new(refusedError)):
			return fmt.Errorf("consume %s: %w", topic, err)
		}
		q.log.Warn("rabbitmq consumer lost its channel; subscribing again", "topic", topic, "err", err)
		if time.Since(started) > time.Minute {
			pause = 100 * time.Millisecond
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// refusedError is a subscription the broker refuses in a way that retrying will not fix: a
// queue declared elsewhere with other arguments, missing permissions. The same codes on a
// channel that was already consuming (a consumer_timeout closes it with PRECONDITION_FAILED)
// are not refusals: the consumer subscribes again.
type refusedError struct{ err error }

func (e refusedError) Error() string { return e.err.Error() }
func (e refusedError) Unwrap() error { return e.err }

// setupErr marks err as a refusal when its code says so.
func setupErr(err error) error {
	var ae *amqp.Error
	if errors.As(err, &ae) && (ae.Code == amqp.PreconditionFailed || ae.Code == amqp.AccessRefused ||
		ae.Code == amqp.NotAllowed) {
		return refusedError{err}
	}
	return err
}

// consumeOnce consumes on one channel until it closes (an error) or ctx ends (nil).
func (q *Queue) consumeOnce(ctx context.Context, topic string, sem chan struct{}, handlers *sync.WaitGroup, h server.Handler) error {
	conn, err := q.connection(ctx)
	if err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	lost := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Qos(cap(sem), 0, false); err != nil {
		return fmt.Errorf("qos: %w", err)
	}
	if err := declare(ch, topic, q.cfg.QueueType); err != nil {
		return setupErr(err)
	}
	tag := "v2m-" + server.NewID()
	deliveries, err := ch.Consume(topic, tag, false, false, false, false, nil)
	if err != nil {
		return setupErr(fmt.Errorf("consume: %w", err))
	}
	q.log.Debug("rabbitmq consuming", "topic", topic, "concurrency", cap(sem))
	var session sync.WaitGroup // this channel's handlers, awaited before it closes
	for {
		select { // a free slot first: a delivery taken is a delivery started
		case <-ctx.Done():
			return q.stopConsuming(ch, tag, topic, deliveries, &session)
		case e := <-lost:
			return channelLost(e)
		case sem <- struct{}{}:
		}
		select {
		case <-ctx.Done():
			<-sem
			return q.stopConsuming(ch, tag, topic, deliveries, &session)
		case e := <-lost:
			<-sem
			return channelLost(e)
		case d, ok := <-deliveries:
			if !ok {
				<-sem
				return errors.New("delivery channel closed")
			}
			handlers.Add(1)
			session.Add(1)
			go func() {
				defer func() { <-sem; session.Done(); handlers.Done() }()
				q.handle(ctx, ch, topic, d, h)
			}()
		}
	}
}

func channelLost(e *amqp.Error) error {
	if e == nil {
		return errors.New("channel closed")
	}
	return fmt.Errorf("channel closed: %w", e)
}

// stopConsuming cancels the subscription, hands back what was prefetched but not started,
// and waits for this channel's handlers so that their acks go out before it closes.
func (q *Queue) stopConsuming(ch *amqp.Channel, tag, topic string, deliveries <-chan amqp.Delivery, session *sync.WaitGroup) error {
	_ = ch.Cancel(tag, false)
	drain := time.NewTimer(5 * time.Second)
	defer drain.Stop()
drained:
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				break drained
			}
			attempt := attemptOf(d.Headers)
			if d.Redelivered {
				attempt++ // keep counting the redelivery, as handle would have
			}
			q.handBack(context.Background(), ch, topic, d, attempt)
		case <-drain.C:
			break drained
		}
	}
	session.Wait()
	return nil
}

// handle runs h on one delivery and settles it: ack, retry, or dead-letter.
func (q *Queue) handle(ctx context.Context, ch *amqp.Channel, topic string, d amqp.Delivery, h server.Handler) {
	maxAttempts := q.cfg.MaxAttempts
	attempt := attemptOf(d.Headers)
	log := q.log.With("topic", topic, "message_id", d.MessageId, "attempt", attempt)
	if d.Redelivered {
		// The broker gave it back: its consumer died, or its channel closed, before the
		// ack. That counts as an attempt; record it in the message before running it again.
		q.observe(topic, EventRedelivered)
		attempt++
		if attempt > maxAttempts {
			log.Warn("rabbitmq message redelivered too often; dead-lettering")
			q.deadLetter(ctx, ch, topic, d, maxAttempts, "delivered "+strconv.Itoa(maxAttempts)+" times without being acknowledged (consumer crashed or lost its channel)")
			return
		}
		log.Info("rabbitmq message redelivered; counting an attempt", "next_attempt", attempt)
		q.move(ctx, ch, topic, topic, d, attempt, "", 0)
		return
	}
	var err error
	if h != nil {
		// The publisher's trace context, from the headers: the handler's spans join its trace.
		hctx := tracing.Extract(ctx, tracing.CarrierFrom(func(k string) (any, bool) { v, ok := d.Headers[k]; return v, ok }))
		err = q.safeCall(hctx, h, server.Delivery{Topic: topic, Body: d.Body, Attempt: attempt, MaxAttempts: maxAttempts})
	}
	if ch.IsClosed() {
		// The broker has requeued the delivery already (consumer_timeout, broker restart):
		// it comes back as a redelivery. Nothing to settle here.
		log.Info("rabbitmq channel closed while the handler ran; the broker requeued the message", "handler_err", err)
		return
	}
	switch {
	case err == nil:
		q.ack(ch, d, log)
	case ctx.Err() != nil:
		log.Info("rabbitmq handler stopped by shutdown; putting the message back", "err", err)
		q.handBack(ctx, ch, topic, d, attempt)
	case server.IsPermanent(err):
		log.Warn("rabbitmq handler failed permanently; dead-lettering", "err", err)
		q.deadLetter(ctx, ch, topic, d, attempt, err.Error())
	case attempt >= maxAttempts:
		log.Warn("rabbitmq handler failed on the last attempt; dead-lettering", "err", err)
		q.deadLetter(ctx, ch, topic, d, attempt, err.Error())
	default:
		wait := max(q.cfg.Backoff(attempt), delayUnit) // a delay queue, even for no backoff
		log.Info("rabbitmq handler failed; retrying later", "err", err, "backoff", wait)
		if q.move(ctx, ch, topic, DelayQueue(topic, wait), d, attempt+1, err.Error(), wait) {
			q.observe(topic, EventRetried)
		}
	}
}

// safeCall runs h, turning a panic into an error (and its stack into a log line).
func (q *Queue) safeCall(ctx context.Context, h server.Handler, d server.Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			q.log.ErrorContext(ctx, "rabbitmq handler panicked", "topic", d.Topic, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return h(ctx, d)
}

func (q *Queue) deadLetter(ctx context.Context, ch *amqp.Channel, topic string, d amqp.Delivery, attempts int, reason string) {
	headers := amqp.Table{HeaderDeadAt: time.Now().UnixMilli()}
	for k, v := range d.Headers {
		if k != HeaderDeadAt {
			headers[k] = v
		}
	}
	d.Headers = headers
	if q.move(ctx, ch, topic, topic+DLQSuffix, d, attempts, reason, 0) {
		q.observe(topic, EventDeadLettered)
	}
}

// handBack puts d back at the end of topic's queue without counting an attempt.
func (q *Queue) handBack(ctx context.Context, ch *amqp.Channel, topic string, d amqp.Delivery, attempt int) {
	q.move(ctx, ch, topic, topic, d, attempt, "", 0)
}

// move publishes a copy of d to queue with the given attempt header (and error text when
// set), then acks d; with expire set, queue is the delay queue of expire (see publishRetry).
// If the copy cannot be published, d is returned to the
// broker instead (nack with requeue), after a pause so that a broker in trouble does not
// see a hot loop. It reports whether the copy was published.
func (q *Queue) move(ctx context.Context, ch *amqp.Channel, topic, queue string, d amqp.Delivery, attempt int, reason string, expire time.Duration) bool {
	headers := amqp.Table{}
	for k, v := range d.Headers {
		headers[k] = v
	}
	headers[HeaderAttempt] = int32(attempt)
	if reason != "" {
		if len(reason) > maxErrorHeader {
			reason = reason[:maxErrorHeader]
		}
		headers[HeaderError] = reason
	} else {
		delete(headers, HeaderError)
	}
	msg := amqp.Publishing{
		Headers:         headers,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		CorrelationId:   d.CorrelationId,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.cfg.PublishTimeout)
	defer cancel()
	publish := func() error { return q.publish(pctx, topic, queue, msg) }
	if expire > 0 {
		publish = func() error { return q.publishRetry(pctx, topic, expire, msg) }
	}
	if err := publish(); err != nil {
		q.observe(topic, EventPublishFailed)
		q.log.Warn("rabbitmq could not move a message; returning it to the broker", "topic", topic, "to", queue, "err", err)
		if ctx.Err() == nil {
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		if err := d.Nack(false, true); err != nil {
			q.log.Info("rabbitmq nack failed; the broker requeues the message when the channel closes", "topic", topic, "err", err)
		}
		return false
	}
	q.ack(ch, d, q.log.With("topic", topic))
	return true
}

func (q *Queue) ack(ch *amqp.Channel, d amqp.Delivery, log interface{ Info(string, ...any) }) {
	if err := d.Ack(false); err != nil {
		// The channel died after the handler finished: the broker requeues the message
		// and it comes back as a redelivery. Not a crash.
		log.Info("rabbitmq ack failed; the broker will redeliver the message", "err", err, "channel_closed", ch.IsClosed())
	}
}
