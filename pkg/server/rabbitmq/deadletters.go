package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/v2m/v2m/pkg/server"
)

// # Dead letters
//
// A topic's dead letters are the messages of T.dlq, which no one consumes. AMQP 0-9-1 has no
// way to read a queue without taking its messages, so the Queue reads T.dlq with basic.get
// and no auto-ack, on a channel of its own, and holds every message it got unacknowledged
// until it is done; then it settles them in one go: a nack with requeue for every message it
// only looked at, an ack for the one it replayed (after the broker confirmed the copy) or
// purged. The broker puts requeued messages back at their place in the queue, and requeues
// anything still unacknowledged by itself if the channel or the connection dies meanwhile, so
// a listing that fails or crashes half way loses nothing. While a walk runs, the letters it
// holds are invisible to another walk (a second admin listing at the same moment sees fewer).
//
// A letter's ID is its message id, which the message keeps from its first publish through
// every retry. A walk sees at most maxWalk letters of a queue.

// maxWalk bounds how many letters one walk of a dead-letter queue holds.
const maxWalk = 10000

// DefaultTopics are the topics whose dead letters a listing of every topic ("") shows.
var DefaultTopics = []string{server.TopicVideo, server.TopicMP3}

var _ server.DeadLetters = (*Queue)(nil)

// walk gets the letters of topic's dead-letter queue one by one, up to limit, calling visit
// on each until it returns true (stop). It then settles: the letters in take are acked, the
// others requeued. take runs after visit has seen its letter and before the settling; an error
// from it requeues everything.
func (q *Queue) walk(ctx context.Context, topic string, limit int, visit func(d amqp.Delivery) (take, stop bool, err error)) error {
	if err := validTopic(topic); err != nil {
		return err
	}
	conn, err := q.connection(ctx)
	if err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close() // requeues whatever is still unacknowledged
	if err := declare(ch, topic, q.cfg.QueueType); err != nil {
		return err
	}
	var held, taken []uint64
	var werr error
	for len(held) < min(limit, maxWalk) {
		if err := ctx.Err(); err != nil {
			werr = err
			break
		}
		d, ok, err := ch.Get(topic+DLQSuffix, false)
		if err != nil {
			werr = fmt.Errorf("get from %s%s: %w", topic, DLQSuffix, err)
			break
		}
		if !ok {
			break
		}
		held = append(held, d.DeliveryTag)
		take, stop, err := visit(d)
		if err != nil {
			werr = err
			break
		}
		if take {
			taken = append(taken, d.DeliveryTag)
		}
		if stop {
			break
		}
	}
	if werr != nil {
		taken = nil
	}
	for _, tag := range held {
		if slices.Contains(taken, tag) {
			err = ch.Ack(tag, false)
		} else {
			err = ch.Nack(tag, false, true)
		}
		if err != nil {
			// The channel is gone: the broker requeues what was not acked.
			return errors.Join(werr, fmt.Errorf("settle dead letters of %s: %w", topic, err))
		}
	}
	return werr
}

func (q *Queue) topics(topic string) []string {
	if topic == "" {
		return DefaultTopics
	}
	return []string{topic}
}

// DeadLetters implements server.DeadLetters; topic "" lists DefaultTopics.
func (q *Queue) DeadLetters(ctx context.Context, topic string, limit int) ([]server.DeadLetter, error) {
	out := []server.DeadLetter{}
	for _, t := range q.topics(topic) {
		if len(out) >= limit {
			break
		}
		err := q.walk(ctx, t, limit-len(out), func(d amqp.Delivery) (bool, bool, error) {
			out = append(out, letter(t, d))
			return false, false, nil
		})
		if err != nil {
			return nil, fmt.Errorf("list dead letters of %s: %w", t, err)
		}
	}
	return out, nil
}

func letter(topic string, d amqp.Delivery) server.DeadLetter {
	l := server.DeadLetter{ID: d.MessageId, Topic: topic, Attempts: attemptOf(d.Headers), Body: d.Body, At: d.Timestamp.UTC()}
	if r, ok := d.Headers[HeaderError].(string); ok {
		l.Reason = r
	}
	if at, ok := d.Headers[HeaderDeadAt].(int64); ok && at > 0 {
		l.At = time.UnixMilli(at).UTC()
	}
	return server.LetterOf(l)
}

// Replay implements server.DeadLetters: the broker confirms the copy on topic before the
// letter is acked away. An ack that fails after the copy was confirmed leaves both.
func (q *Queue) Replay(ctx context.Context, topic, id string) error {
	found := false
	err := q.walk(ctx, topic, maxWalk, func(d amqp.Delivery) (bool, bool, error) {
		if d.MessageId != id || id == "" {
			return false, false, nil
		}
		found = true
		pctx, cancel := context.WithTimeout(ctx, q.cfg.PublishTimeout)
		defer cancel()
		msg := amqp.Publishing{
			Headers: amqp.Table{HeaderAttempt: int32(1)}, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding,
			CorrelationId: d.CorrelationId, MessageId: d.MessageId, Type: d.Type, AppId: d.AppId, Body: d.Body,
		}
		if err := q.publish(pctx, topic, topic, msg); err != nil {
			q.observe(topic, EventPublishFailed)
			return false, true, fmt.Errorf("publish the copy: %w", err)
		}
		q.observe(topic, EventPublished)
		return true, true, nil
	})
	if err != nil {
		return fmt.Errorf("replay dead letter %s of %s: %w", id, topic, err)
	}
	if !found {
		return server.Errorf(server.ENOTFOUND, "dead letter %s of topic %s not found", id, topic)
	}
	return nil
}

// Purge implements server.DeadLetters. Without ids it purges the whole dead-letter queue.
func (q *Queue) Purge(ctx context.Context, topic string, ids []string) (int, error) {
	if len(ids) == 0 {
		if err := validTopic(topic); err != nil {
			return 0, err
		}
		conn, err := q.connection(ctx)
		if err != nil {
			return 0, err
		}
		ch, err := conn.Channel()
		if err != nil {
			return 0, fmt.Errorf("open channel: %w", err)
		}
		defer ch.Close()
		if err := declare(ch, topic, q.cfg.QueueType); err != nil {
			return 0, err
		}
		n, err := ch.QueuePurge(topic+DLQSuffix, false)
		if err != nil {
			return 0, fmt.Errorf("purge %s%s: %w", topic, DLQSuffix, err)
		}
		return n, nil
	}
	n := 0
	err := q.walk(ctx, topic, maxWalk, func(d amqp.Delivery) (bool, bool, error) {
		if d.MessageId != "" && slices.Contains(ids, d.MessageId) {
			n++
			return true, false, nil
		}
		return false, false, nil
	})
	if err != nil {
		return 0, fmt.Errorf("purge dead letters of %s: %w", topic, err)
	}
	return n, nil
}
