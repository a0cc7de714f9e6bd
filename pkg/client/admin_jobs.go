package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/v2m/v2m/pkg/wire"
)

// AdminJobFilter selects everyone's jobs for AdminJobs. Zero fields match all.
type AdminJobFilter struct {
	State string
	Owner string
	Since string // an RFC 3339 time or a duration before now ("24h")
	Limit int
}

// AdminJobs lists the jobs of every user, newest first (administrators only; anyone else
// gets ENOTFOUND).
func (c *Client) AdminJobs(ctx context.Context, f AdminJobFilter) ([]wire.AdminJob, error) {
	q := url.Values{}
	for k, v := range map[string]string{"state": f.State, "owner": f.Owner, "since": f.Since} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out wire.AdminJobList
	if err := c.doJSON(ctx, http.MethodGet, withQuery("/v1/admin/jobs", q), nil, &out, nil); err != nil {
		return nil, fmt.Errorf("list everyone's jobs: %w", err)
	}
	if out.Jobs == nil {
		out.Jobs = []wire.AdminJob{}
	}
	return out.Jobs, nil
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

func topicQuery(topic string) url.Values {
	q := url.Values{}
	if topic != "" {
		q.Set("topic", topic)
	}
	return q
}

// DeadLetters lists the dead letters of topic ("" for every topic).
func (c *Client) DeadLetters(ctx context.Context, topic string) ([]wire.DeadLetter, error) {
	var out wire.DeadLetterList
	if err := c.doJSON(ctx, http.MethodGet, withQuery("/v1/admin/dead-letters", topicQuery(topic)), nil, &out, nil); err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	if out.Letters == nil {
		out.Letters = []wire.DeadLetter{}
	}
	return out.Letters, nil
}

// ReplayDeadLetters replays the letters ids, or all of them (of topic) with all.
func (c *Client) ReplayDeadLetters(ctx context.Context, topic string, ids []string, all bool) (*wire.ReplayResult, error) {
	var out wire.ReplayResult
	if err := c.doJSON(ctx, http.MethodPost, withQuery("/v1/admin/dead-letters/replay", topicQuery(topic)),
		wire.LetterIDs{IDs: ids, All: all}, &out, nil); err != nil {
		return nil, fmt.Errorf("replay dead letters: %w", err)
	}
	return &out, nil
}

// PurgeDeadLetters removes the letters ids, or every one of topic ("" for all) when ids is
// empty, and returns how many were removed.
func (c *Client) PurgeDeadLetters(ctx context.Context, topic string, ids []string) (int, error) {
	var in any
	if len(ids) > 0 {
		in = wire.LetterIDs{IDs: ids}
	}
	var out wire.PurgeResult
	if err := c.doJSON(ctx, http.MethodDelete, withQuery("/v1/admin/dead-letters", topicQuery(topic)), in, &out, nil); err != nil {
		return 0, fmt.Errorf("purge dead letters: %w", err)
	}
	return out.Purged, nil
}
