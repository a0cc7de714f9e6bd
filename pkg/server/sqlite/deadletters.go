package sqlite

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/v2m/v2m/pkg/server"
)

var _ server.DeadLetters = (*Queue)(nil)

// DeadLetters implements server.DeadLetters: the dead messages of the table, oldest first.
// A letter's ID is its row id.
func (q *Queue) DeadLetters(ctx context.Context, topic string, limit int) ([]server.DeadLetter, error) {
	query := `SELECT id, topic, body, attempt, error, dead_at, created_at FROM messages WHERE dead = 1`
	var args []any
	if topic != "" {
		query += ` AND topic = ?`
		args = append(args, topic)
	}
	query += ` ORDER BY topic, dead_at, id LIMIT ?`
	rows, err := q.db.db.QueryContext(ctx, query, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer rows.Close()
	out := []server.DeadLetter{}
	for rows.Next() {
		var l server.DeadLetter
		var id, deadAt, created int64
		if err := rows.Scan(&id, &l.Topic, &l.Body, &l.Attempts, &l.Reason, &deadAt, &created); err != nil {
			return nil, fmt.Errorf("list dead letters: %w", err)
		}
		if deadAt == 0 { // dead before the column existed
			deadAt = created
		}
		l.ID, l.At = strconv.FormatInt(id, 10), fromMS(deadAt)
		out = append(out, server.LetterOf(l))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// letterID parses a dead letter's ID; ok is false for one this queue never gives.
func letterID(id string) (int64, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	return n, err == nil && n > 0 && strconv.FormatInt(n, 10) == id
}

// Replay implements server.DeadLetters. The letter becomes a live message again in one
// update, due at once, as a first attempt: there is no moment at which it is in neither place.
func (q *Queue) Replay(ctx context.Context, topic, id string) error {
	n, ok := letterID(id)
	if !ok {
		return server.Errorf(server.ENOTFOUND, "dead letter %q not found", id)
	}
	now := ms(q.db.now())
	res, err := q.db.db.ExecContext(ctx, `UPDATE messages SET dead = 0, attempt = 0, error = '', lease_until = 0, not_before = ?, dead_at = 0
		WHERE id = ? AND topic = ? AND dead = 1`, now, n, topic)
	if err != nil {
		return fmt.Errorf("replay dead letter %s: %w", id, err)
	}
	if k, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("replay dead letter %s: %w", id, err)
	} else if k == 0 {
		return server.Errorf(server.ENOTFOUND, "dead letter %s of topic %s not found", id, topic)
	}
	select {
	case q.wakeChan(topic) <- struct{}{}:
	default:
	}
	return nil
}

// Purge implements server.DeadLetters.
func (q *Queue) Purge(ctx context.Context, topic string, ids []string) (int, error) {
	query := `DELETE FROM messages WHERE dead = 1 AND topic = ?`
	args := []any{topic}
	if len(ids) > 0 {
		var nums []string
		for _, id := range ids {
			if n, ok := letterID(id); ok {
				nums = append(nums, "?")
				args = append(args, n)
			}
		}
		if len(nums) == 0 {
			return 0, nil
		}
		query += ` AND id IN (` + strings.Join(nums, ", ") + `)`
	}
	res, err := q.db.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("purge dead letters of %s: %w", topic, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("purge dead letters of %s: %w", topic, err)
	}
	return int(n), nil
}
