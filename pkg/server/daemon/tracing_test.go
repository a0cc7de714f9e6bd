package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/crypto/bcrypt"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testmedia"
	"github.com/v2m/v2m/pkg/client"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/api"
	"github.com/v2m/v2m/pkg/server/auth"
	"github.com/v2m/v2m/pkg/server/ffmpeg"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/server/mail"
	"github.com/v2m/v2m/pkg/server/mongo"
	"github.com/v2m/v2m/pkg/server/rabbitmq"
	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/server/token"
	"github.com/v2m/v2m/pkg/server/tracing"
	"github.com/v2m/v2m/pkg/server/worker"
)

// jobSpans are the spans one job makes from its upload's completion to its mail, whatever the
// services: each must be in the job's one trace.
var jobSpans = []string{
	"POST /v1/uploads/:id/complete", "publish video", "convert video", "fetch video", "ffprobe", "ffmpeg encode",
	"store mp3", "publish mp3", "notify", "send mail",
}

// topicName matches the prefix that prefixed gives topics, in a producer span's name.
var topicName = regexp.MustCompile(`^publish test-trace-[0-9a-z]+-`)

// safeBuffer is a log sink that handlers write to from many goroutines.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *safeBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// recorderFor returns a provider of service whose spans rec records, as a process of its own
// would have: only what travels in requests and messages links its spans to the others'.
func recorderFor(t *testing.T, rec *tracetest.SpanRecorder, service string) trace.TracerProvider {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// eventually polls cond until it holds, or fails the test after patience.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not waiting for one
	}
}

// jobTrace waits until the notifier's span of job id has ended, then checks that every span of
// jobSpans is in the trace of the upload's completion, that the message spans chain (each
// consumer a child of its producer), and that the spans came from the services given.
func jobTrace(t *testing.T, rec *tracetest.SpanRecorder, id string, services map[string]string) trace.TraceID {
	t.Helper()
	hasJob := func(s sdktrace.ReadOnlySpan) bool {
		for _, a := range s.Attributes() {
			if a.Key == tracing.JobID && a.Value.AsString() == id {
				return true
			}
		}
		return false
	}
	eventually(t, "the notify span of the job ended", func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == "notify" && hasJob(s) {
				return true
			}
		}
		return false
	})
	var tid trace.TraceID
	for _, s := range rec.Ended() {
		if s.Name() == "POST /v1/uploads/:id/complete" && hasJob(s) {
			tid = s.SpanContext().TraceID()
		}
	}
	if !tid.IsValid() {
		t.Fatal("no span of the upload's completion names the job")
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() == tid {
			byName[topicName.ReplaceAllString(s.Name(), "publish ")] = s
		}
	}
	for _, name := range jobSpans {
		s, ok := byName[name]
		if !ok {
			var got []string
			for n := range byName {
				got = append(got, n)
			}
			t.Fatalf("no span %q in the job's trace %s; it has %v", name, tid, got)
		}
		if want := services[name]; want != "" {
			svc, _ := s.Resource().Set().Value("service.name")
			if svc.AsString() != want {
				t.Errorf("span %q came from %q, want %q", name, svc.AsString(), want)
			}
		}
	}
	for consumer, producer := range map[string]string{"convert video": "publish video", "notify": "publish mp3"} {
		if got, want := byName[consumer].Parent().SpanID(), byName[producer].SpanContext().SpanID(); got != want {
			t.Errorf("span %q's parent is %s, want the %q span %s", consumer, got, producer, want)
		}
	}
	if k := byName["convert video"].SpanKind(); k != trace.SpanKindConsumer {
		t.Errorf("convert video is a %v span, want consumer", k)
	}
	if k := byName["publish video"].SpanKind(); k != trace.SpanKindProducer {
		t.Errorf("publish video is a %v span, want producer", k)
	}
	for _, s := range rec.Ended() {
		for _, a := range s.Attributes() {
			if v := a.Value.String(); strings.Contains(v, "@example.com") || strings.Contains(v, "Bearer") {
				t.Errorf("span %q has attribute %s = %q: no emails or tokens in spans", s.Name(), a.Key, v)
			}
		}
		if strings.Contains(s.Name(), id) {
			t.Errorf("span name %q holds the job's id: names are route templates", s.Name())
		}
	}
	return tid
}

// logsInTrace checks that the JSON log lines with these messages carry the trace's id.
func logsInTrace(t *testing.T, logs string, tid trace.TraceID, msgs ...string) {
	t.Helper()
	found := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg     string `json:"msg"`
			TraceID string `json:"trace_id"`
			SpanID  string `json:"span_id"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		for _, m := range msgs {
			if line.Msg == m && line.TraceID == tid.String() && len(line.SpanID) == 16 {
				found[m] = true
			}
		}
	}
	for _, m := range msgs {
		if !found[m] {
			t.Errorf("no JSON log line %q with trace_id %s and a span_id", m, tid)
		}
	}
}

// uploadAndWait registers a user at url, uploads a real video and waits for its job to be done.
func uploadAndWait(t *testing.T, url string) *client.Job {
	t.Helper()
	ctx := t.Context()
	video := testmedia.MustGenerate(t, t.TempDir(), testmedia.Good[1])
	anon, _ := client.New(url)
	if _, err := anon.Register(ctx, "tracy@example.com", "password1"); err != nil {
		t.Fatal(err)
	}
	tok, err := anon.Login(ctx, "tracy@example.com", "password1")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client.New(url, client.WithToken(tok.Token))
	job, err := c.Upload(ctx, video, client.UploadOptions{Full: true})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	done, err := c.Wait(wctx, job.ID, nil)
	if err != nil || done.State != client.JobDone {
		t.Fatalf("job %+v, %v: want done", done, err)
	}
	return done
}

// TestOneTracePerJobStandalone runs v2md standalone in this process with a span recorder: the
// upload's completion, the queue in SQLite, the conversion with ffmpeg and the mail to the
// outbox make one trace, and the JSON log lines of those spans carry its trace_id.
func TestOneTracePerJobStandalone(t *testing.T) {
	testenv.Tool(t, "ffmpeg")
	rec := tracetest.NewSpanRecorder()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sc := standaloneCommand(&bytes.Buffer{})
	if err := sc.cmd.ParseFlags([]string{"--data", t.TempDir(), "--addr", addr, "--metrics-addr", "", "--log-format", "json",
		"--concurrency", "1"}); err != nil {
		t.Fatal(err)
	}
	s := sc.settings
	if err := s.load(); err != nil {
		t.Fatal(err)
	}
	var logs safeBuffer
	log, err := newLogger(s, &logs)
	if err != nil {
		t.Fatal(err)
	}
	s.tp = recorderFor(t, rec, "v2m-standalone")
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- runStandalone(ctx, s, log) }()
	t.Cleanup(func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("standalone: %v", err)
		}
	})
	url := "http://" + addr
	eventually(t, "standalone answers", func() bool {
		c, _ := client.New(url)
		_, err := c.Register(t.Context(), "probe@example.org", "password1")
		return err == nil
	})

	job := uploadAndWait(t, url)
	tid := jobTrace(t, rec, job.ID, nil)
	logsInTrace(t, logs.String(), tid, "http request", "job queued", "conversion started", "conversion done", "mail sent")
}

// prefixed is a real queue whose topics get a prefix, so that this test's messages do not meet
// other consumers of the shared broker's video and mp3 queues.
type prefixed struct {
	server.Queue
	prefix string
}

func (p prefixed) Publish(ctx context.Context, topic string, body []byte) error {
	return p.Queue.Publish(ctx, p.prefix+topic, body)
}

func (p prefixed) Consume(ctx context.Context, topic string, n int, h server.Handler) error {
	return p.Queue.Consume(ctx, p.prefix+topic, n, func(ctx context.Context, d server.Delivery) error {
		d.Topic = strings.TrimPrefix(d.Topic, p.prefix)
		return h(ctx, d)
	})
}

// TestOneTracePerJobDistributed wires a gateway, a converter and a notifier as the distributed
// services are, each with its own tracer provider and its own connection to the real RabbitMQ,
// on a real MongoDB and SMTP server: the trace crosses the broker in the messages' headers, and
// the spans of the three services share one trace. Their JSON logs carry its trace_id.
func TestOneTracePerJobDistributed(t *testing.T) {
	amqpURL := testenv.Get(t, testenv.AMQPURL)
	mongoURI := testenv.Get(t, testenv.MongoURI)
	smtpAddr := testenv.Get(t, testenv.SMTPAddr)
	testenv.Tool(t, "ffmpeg")
	ctx := t.Context()
	rec := tracetest.NewSpanRecorder()
	var logs safeBuffer
	log := slog.New(tracing.LogHandler(slog.NewJSONHandler(&logs, nil)))
	name := "test_trace_" + server.NewID()[:12]
	db, err := mongo.Open(ctx, mongo.Config{URI: mongoURI, Database: name, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		bg := context.Background()
		_ = db.Database().Drop(bg)
		_ = db.Close(bg)
	})
	prefix := "test-trace-" + server.NewID()[:8] + "-"
	dial := func(service string, tp trace.TracerProvider) server.Queue {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		q, err := rabbitmq.Dial(dctx, rabbitmq.Config{URL: amqpURL, Name: service, Logger: log, TracerProvider: tp, MaxAttempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return prefixed{q, prefix}
	}
	gatewayTP, convertTP, notifyTP := recorderFor(t, rec, "v2m-gateway"), recorderFor(t, rec, "v2m-convert"), recorderFor(t, rec, "v2m-notify")

	// The gateway, with accounts of its own (the auth service is not on the job's path).
	sq, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	pem, _ := token.GenerateEd25519PEM()
	key, _ := token.ParseKey(token.EdDSA, pem)
	accounts := &auth.Service{Users: sq.Users(), Tokens: &token.Issuer{Key: key, Issuer: "v2m"}, Cost: bcrypt.MinCost}
	h := api.New(api.Config{Accounts: accounts, Verifier: &token.Verifier{Alg: token.EdDSA, Issuer: "v2m", Keys: token.StaticKeys{key}},
		Service: &jobs.Service{Jobs: db.Jobs(), Uploads: db.Uploads(), Blobs: db.Blobs(), Queue: dial("gateway", gatewayTP),
			Logger: log, TracerProvider: gatewayTP},
		Logger: log.With("service", "gateway"), TracerProvider: gatewayTP})
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Drain(); srv.Close() })

	ff, err := ffmpeg.New(ffmpeg.Config{Timeout: time.Minute, TracerProvider: convertTP})
	if err != nil {
		t.Fatal(err)
	}
	convQ := dial("convert", convertTP)
	conv := &worker.Converter{Jobs: db.Jobs(), Blobs: db.Blobs(), Queue: convQ, Converter: ff, TmpDir: t.TempDir(),
		Logger: log.With("service", "convert"), TracerProvider: convertTP}
	notifyQ := dial("notify", notifyTP)
	n := &worker.Notifier{Mailer: &mail.SMTP{Addr: smtpAddr, From: "v2m <v2m@localhost>", TLS: "none"}, Sent: db.SentLog(),
		Logger: log.With("service", "notify"), TracerProvider: notifyTP}
	cctx, stop := context.WithCancel(context.Background())
	var consumers sync.WaitGroup
	consumers.Go(func() { _ = convQ.Consume(cctx, server.TopicVideo, 1, conv.Handle) })
	consumers.Go(func() { _ = notifyQ.Consume(cctx, server.TopicMP3, 1, n.Handle) })
	t.Cleanup(func() { stop(); consumers.Wait() })

	job := uploadAndWait(t, srv.URL)
	tid := jobTrace(t, rec, job.ID, map[string]string{
		"POST /v1/uploads/:id/complete": "v2m-gateway", "publish video": "v2m-gateway",
		"convert video": "v2m-convert", "ffmpeg encode": "v2m-convert", "store mp3": "v2m-convert", "publish mp3": "v2m-convert",
		"notify": "v2m-notify", "send mail": "v2m-notify",
	})
	logsInTrace(t, logs.String(), tid, "http request", "job queued", "conversion started", "conversion done", "mail sent")
}
