// Package metrics holds a process's Prometheus collectors (client_golang) in its own registry.
// Every method is safe on a nil *Metrics, so components can be used without metrics in tests.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/v2m/v2m/pkg/server"
)

// Metrics are the collectors every v2md service shares.
type Metrics struct {
	reg             *prometheus.Registry
	httpRequests    *prometheus.CounterVec
	httpDuration    *prometheus.HistogramVec
	jobs            *prometheus.CounterVec
	convertSeconds  prometheus.Histogram
	bytes           *prometheus.CounterVec
	publishFailures *prometheus.CounterVec
	redeliveries    *prometheus.CounterVec
	mails           *prometheus.CounterVec
	freedFiles      *prometheus.CounterVec
	freedBytes      *prometheus.CounterVec
}

// New returns Metrics registered in a new registry, with Go and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "v2m_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"method", "route", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "v2m_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"method", "route"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "v2m_jobs_total", Help: "Jobs that entered each state.",
		}, []string{"state"}),
		convertSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "v2m_conversion_seconds", Help: "Time to convert one video, successful or not.",
			Buckets: prometheus.ExponentialBuckets(0.25, 2, 14),
		}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "v2m_bytes_total", Help: "Bytes received (in) and served or produced (out).",
		}, []string{"direction"}),
		publishFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "v2m_publish_failures_total", Help: "Messages that could not be published, by topic.",
		}, []string{"topic"}),
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "v2m_redeliveries_total", Help: "Messages delivered more than once, by topic.",
		}, []string{"topic"}),
		mails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "v2m_mails_total", Help: "Mails by result (sent, failed).",
		}, []string{"result"}),
		freedFiles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "v2m_retention_freed_files_total", Help: "Files deleted by retention, by reason (video_done, expired, deleted, orphan).",
		}, []string{"reason"}),
		freedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "v2m_retention_freed_bytes_total", Help: "Bytes freed by retention, by reason (video_done, expired, deleted, orphan).",
		}, []string{"reason"}),
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpRequests, m.httpDuration, m.jobs, m.convertSeconds, m.bytes, m.publishFailures, m.redeliveries, m.mails, m.freedFiles, m.freedBytes)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// HTTPRequest counts one request.
func (m *Metrics) HTTPRequest(method, route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(method, route).Observe(d.Seconds())
}

// Job counts a job entering state.
func (m *Metrics) Job(state string) {
	if m != nil {
		m.jobs.WithLabelValues(state).Inc()
	}
}

// Conversion records the time one conversion took.
func (m *Metrics) Conversion(d time.Duration) {
	if m != nil {
		m.convertSeconds.Observe(d.Seconds())
	}
}

// BytesIn counts bytes received.
func (m *Metrics) BytesIn(n int64) {
	if m != nil && n > 0 {
		m.bytes.WithLabelValues("in").Add(float64(n))
	}
}

// BytesOut counts bytes served or produced.
func (m *Metrics) BytesOut(n int64) {
	if m != nil && n > 0 {
		m.bytes.WithLabelValues("out").Add(float64(n))
	}
}

// PublishFailure counts a message that could not be published.
func (m *Metrics) PublishFailure(topic string) {
	if m != nil {
		m.publishFailures.WithLabelValues(topic).Inc()
	}
}

// Redelivery counts a message delivered again.
func (m *Metrics) Redelivery(topic string) {
	if m != nil {
		m.redeliveries.WithLabelValues(topic).Inc()
	}
}

// Mail counts a mail by result: "sent" or "failed".
func (m *Metrics) Mail(result string) {
	if m != nil {
		m.mails.WithLabelValues(result).Inc()
	}
}

// Freed counts files deleted by retention and their bytes, by reason: "video_done" (the video
// of a done job), "expired" (the files of an expired job), "deleted" (a job its owner deleted)
// or "orphan" (a file nothing refers to).
func (m *Metrics) Freed(reason string, files int, bytes int64) {
	if m != nil && files > 0 {
		m.freedFiles.WithLabelValues(reason).Add(float64(files))
		m.freedBytes.WithLabelValues(reason).Add(float64(bytes))
	}
}

// CountQueue returns q with its publish failures and redeliveries (deliveries after the first)
// counted: the one place they are counted, in both modes, whoever publishes or consumes.
func (m *Metrics) CountQueue(q server.Queue) server.Queue {
	if m == nil {
		return q
	}
	return &countedQueue{q: q, m: m}
}

type countedQueue struct {
	q server.Queue
	m *Metrics
}

func (c *countedQueue) Publish(ctx context.Context, topic string, body []byte) error {
	err := c.q.Publish(ctx, topic, body)
	if err != nil {
		c.m.PublishFailure(topic)
	}
	return err
}

func (c *countedQueue) Consume(ctx context.Context, topic string, concurrency int, h server.Handler) error {
	return c.q.Consume(ctx, topic, concurrency, func(ctx context.Context, d server.Delivery) error {
		if d.Attempt > 1 {
			c.m.Redelivery(d.Topic)
		}
		return h(ctx, d)
	})
}
