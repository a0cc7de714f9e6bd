package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMetricsExposed(t *testing.T) {
	m := New()
	m.HTTPRequest("GET", "/v1/jobs/:id", 404, time.Millisecond)
	m.Job("done")
	m.Conversion(3 * time.Second)
	m.BytesIn(10)
	m.BytesOut(20)
	m.PublishFailure("video")
	m.Redelivery("video")
	m.Mail("sent")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`v2m_http_requests_total{method="GET",route="/v1/jobs/:id",status="404"} 1`,
		`v2m_jobs_total{state="done"} 1`, `v2m_conversion_seconds_count 1`, `v2m_bytes_total{direction="in"} 10`,
		`v2m_bytes_total{direction="out"} 20`, `v2m_publish_failures_total{topic="video"} 1`,
		`v2m_redeliveries_total{topic="video"} 1`, `v2m_mails_total{result="sent"} 1`, "go_goroutines",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestNilMetricsAreSafe(t *testing.T) {
	var m *Metrics
	m.HTTPRequest("GET", "/", 200, 0)
	m.Job("done")
	m.Mail("failed")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 404 {
		t.Fatalf("nil metrics served %d", rec.Code)
	}
}
