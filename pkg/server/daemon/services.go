package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/internal/version"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/api"
	"github.com/v2m/v2m/pkg/server/auth"
	"github.com/v2m/v2m/pkg/server/inproc"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/server/metrics"
	"github.com/v2m/v2m/pkg/server/mongo"
	"github.com/v2m/v2m/pkg/server/mysql"
	"github.com/v2m/v2m/pkg/server/rabbitmq"
	"github.com/v2m/v2m/pkg/server/token"
	"github.com/v2m/v2m/pkg/server/webhook"
	"github.com/v2m/v2m/pkg/server/worker"
)

var (
	mongoSettings = []setting{
		{"mongo-uri", "", "MongoDB connection URI"},
		{"mongo-uri-file", "", "file holding the MongoDB URI (instead of --mongo-uri)"},
		{"mongo-db", "v2m", "MongoDB database"},
	}
	gridfsSettings = []setting{
		{"gridfs-chunk-size", formatSize(mongo.DefaultChunkSize), "GridFS chunk size; must divide --part-size"},
	}
	amqpSettings = []setting{
		{"amqp-url", "", "RabbitMQ URL"},
		{"amqp-url-file", "", "file holding the RabbitMQ URL (instead of --amqp-url)"},
		{"amqp-queue-type", rabbitmq.QueueClassic, "type of the work, retry and dead-letter queues: classic, or quorum (replicated on a RabbitMQ cluster; every service must use the same)"},
	}
	jwtAlgSettings = []setting{
		{"jwt-alg", token.EdDSA, "token signature algorithm: EdDSA, or HS256 with a shared secret"},
		{"jwt-key-file", "", "signing key: an Ed25519 PEM from `v2md keygen`, or the HS256 secret"},
	}
)

// service wraps the run function of a distributed service with settings, a logger and signals.
func service(stderr io.Writer, use, short, listen, metricsAddr string, run func(ctx context.Context, s *settings, log *slog.Logger) error, list ...[]setting) subcommand {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs}
	s := bind(cmd, append([][]setting{{
		{"listen", listen, "HTTP listen address (the API where the service has one; /healthz and /readyz on every service)"},
		metricsSetting(metricsAddr),
	}, httpSettings, tracingSettings}, list...)...)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := s.load(); err != nil {
			return err
		}
		log, err := newLogger(s, stderr)
		if err != nil {
			return err
		}
		log = log.With("service", use)
		log.Info("starting", "version", version.Version)
		flush, err := startTracing(cmd.Context(), s, log, use)
		if err != nil {
			return err
		}
		defer flush()
		return run(cmd.Context(), s, log)
	}
	return subcommand{cmd: cmd, settings: s, paths: servicePaths}
}

func required(s *settings, names ...string) error {
	var missing []string
	for _, n := range names {
		v, err := s.secret(n)
		if err != nil {
			return err // the file named by --n-file cannot be read: say why
		}
		if v == "" {
			flag := "--" + n
			if strings.HasSuffix(n, "-uri") || strings.HasSuffix(n, "-url") || strings.HasSuffix(n, "-dsn") {
				flag += " (or --" + n + "-file)"
			}
			missing = append(missing, flag)
		}
	}
	if len(missing) > 0 {
		return badSetting("missing required settings: %s", strings.Join(missing, ", "))
	}
	return nil
}

// openMongo connects to MongoDB; chunk is the GridFS chunk size of new files (0 for services
// that store none).
func openMongo(ctx context.Context, s *settings, log *slog.Logger, chunk int64) (*mongo.DB, error) {
	uri, err := s.secret("mongo-uri")
	if err != nil {
		return nil, err
	}
	return mongo.Open(ctx, mongo.Config{URI: uri, Database: s.str("mongo-db"), ChunkSize: int32(chunk), Logger: log})
}

func dialQueue(ctx context.Context, s *settings, log *slog.Logger, m *metrics.Metrics, name string) (*rabbitmq.Queue, error) {
	return dialQueueThen(ctx, s, log, m, name, nil)
}

// dialQueueThen is dialQueue with a callback for each reconnect (rabbitmq.Config.OnReconnect).
func dialQueueThen(ctx context.Context, s *settings, log *slog.Logger, m *metrics.Metrics, name string, onReconnect func(time.Time)) (*rabbitmq.Queue, error) {
	url, err := s.secret("amqp-url")
	if err != nil {
		return nil, err
	}
	maxAttempts := 5
	if s.isSet("max-attempts") || s.v.Get("max-attempts") != nil {
		maxAttempts = s.int("max-attempts")
	}
	queueType, err := amqpQueueType(s)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// Publish failures and redeliveries are counted by metrics.CountQueue, around the queue.
	return rabbitmq.Dial(dctx, rabbitmq.Config{URL: url, MaxAttempts: maxAttempts, Logger: log, Name: name, QueueType: queueType, TracerProvider: s.tracer(),
		OnReconnect: onReconnect})
}

// amqpQueueType reads --amqp-queue-type; the services check it before they connect anywhere.
func amqpQueueType(s *settings) (string, error) {
	switch t := s.str("amqp-queue-type"); t {
	case rabbitmq.QueueClassic, rabbitmq.QueueQuorum:
		return t, nil
	default:
		return "", badSetting("--amqp-queue-type must be %s or %s, not %q", rabbitmq.QueueClassic, rabbitmq.QueueQuorum, t)
	}
}

// ----------------------------------------------------------------- auth

func authCommand(stderr io.Writer) subcommand {
	return service(stderr, "auth", "Run the auth service: users in MySQL, login by HTTP Basic, signed JWTs and their JWKS", ":8081", "127.0.0.1:9081", runAuth,
		[]setting{
			{"mysql-dsn", "", "MySQL data source name, e.g. user:pass@tcp(host:3306)/auth"},
			{"mysql-dsn-file", "", "file holding the MySQL DSN (instead of --mysql-dsn)"},
			{"jwt-verify-key-files", []string{}, "older public keys (or HS256 secrets) that stay valid during a key rotation"},
			{"jwt-reload-interval", token.DefaultReloadInterval, "how often --jwt-key-file and --jwt-verify-key-files are read again, so that a rotated key takes effect without a restart (0: never)"},
			{"token-ttl", token.DefaultTTL, "lifetime of tokens"},
			{"bcrypt-cost", auth.DefaultCost, "bcrypt cost of password hashes"},
		}, jwtAlgSettings, tokenSettings, throttleSettings, hashSettings)
}

func loadKeys(s *settings) (token.Key, []token.Key, error) {
	alg := s.str("jwt-alg")
	if alg != token.EdDSA && alg != token.HS256 {
		return token.Key{}, nil, badSetting("--jwt-alg must be EdDSA or HS256, not %q", alg)
	}
	if s.str("jwt-key-file") == "" {
		return token.Key{}, nil, badSetting("--jwt-key-file is required (create one with `v2md keygen -o key.pem`)")
	}
	key, err := token.LoadKeyFile(alg, s.str("jwt-key-file"))
	if err != nil {
		return token.Key{}, nil, err
	}
	all := []token.Key{key}
	for _, f := range s.strings("jwt-verify-key-files") {
		k, err := token.LoadKeyFile(alg, f)
		if err != nil {
			return token.Key{}, nil, err
		}
		k.Private = nil // verification only
		all = append(all, k)
	}
	return key, all, nil
}

func runAuth(ctx context.Context, s *settings, log *slog.Logger) error {
	if err := required(s, "mysql-dsn"); err != nil {
		return err
	}
	limits, err := httpLimits(s)
	if err != nil {
		return err
	}
	key, _, err := loadKeys(s)
	if err != nil {
		return err
	}
	if key.Alg == token.EdDSA && key.Private == nil {
		return badSetting("--jwt-key-file must hold a private key")
	}
	if s.dur("jwt-reload-interval") < 0 {
		return badSetting("--jwt-reload-interval must not be negative")
	}
	// The keys in use: those files, read again when a rotation changes them.
	fileKeys, err := token.LoadFileKeys(key.Alg, s.str("jwt-key-file"), s.strings("jwt-verify-key-files"))
	if err != nil {
		return err
	}
	dsn, _ := s.secret("mysql-dsn")
	store, err := mysql.Open(ctx, dsn, log)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	issuer := s.str("jwt-issuer")
	m := metrics.New()
	loginLimit, registerLimit, proxies, err := throttling(s)
	if err != nil {
		return err
	}
	accounts, err := accountService(s, store, store, key, issuer)
	if err != nil {
		return err
	}
	accounts.Tokens = &token.Issuer{Signer: fileKeys, Issuer: issuer, TTL: s.dur("token-ttl")}
	accounts.Personal, accounts.Issuer, accounts.Logger = store, issuer, log
	if len(proxies) == 0 {
		log.Warn("no --trusted-proxies: every login through a gateway counts against the gateway's IP; list the gateways' CIDR")
	}
	h := api.New(api.Config{
		Limits:   limits,
		Accounts: accounts,
		Verifier: &auth.Verifier{
			JWT:      &token.Verifier{Alg: key.Alg, Issuer: issuer, Keys: fileKeys, Leeway: 30 * time.Second, Revocations: store},
			Personal: accounts, States: auth.StoreStates{Users: store},
		},
		PersonalTokens: accounts, UserAdmin: accounts, Users: store,
		JWKS:   func() any { return token.PublicJWKS(fileKeys.Keys()) },
		Ready:  store.Ping,
		Logger: log, Metrics: m,

		Revoker: accounts, Revocations: store, LoginLimit: loginLimit, RegisterLimit: registerLimit, TrustedProxies: proxies,
		TracerProvider: s.tracer(), TrustTraceContext: true, // only gateways call auth
	})
	log.Info("auth ready", "alg", key.Alg, "kid", key.ID, "verification_keys", len(fileKeys.Keys()))
	if d := s.dur("jwt-reload-interval"); d > 0 {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go fileKeys.Watch(ctx, d, log)
	}
	return serveHTTP(ctx, log, s.str("listen"), s.str("metrics-addr"), h, m, limits)
}

// ----------------------------------------------------------------- gateway

func gatewayCommand(stderr io.Writer) subcommand {
	return service(stderr, "gateway", "Run the public API gateway: uploads into GridFS, jobs in MongoDB, work on RabbitMQ", ":8080", "127.0.0.1:9080", runGateway,
		[]setting{
			{"auth-url", "", "the auth service's base URL, e.g. http://auth:8081"},
			{"sweep-interval", worker.DefaultSweepInterval, "how often the sweeper looks for jobs whose message was lost"},
			{"sweep-queued-after", worker.DefaultQueuedAfter, "the sweeper publishes again a job queued for this long"},
			{"sweep-stale-after", worker.DefaultSweepStaleAfter, "the sweeper publishes again a converting job with no heartbeat for this long"},
			{"revocations-refresh", auth.DefaultRevocationsRefresh, "how often the revoked tokens, and the disabled users, are fetched from auth"},
			{"personal-token-cache", auth.DefaultPersonalCache, "how long auth's answer about a personal API token is cached: a token revoked through another gateway works here for up to this long"},
		}, mongoSettings, gridfsSettings, amqpSettings, uploadSettings, jwtAlgSettings, tokenSettings, throttleSettings, webhookSettings,
		retentionSettings, quotaSettings)
}

func runGateway(ctx context.Context, s *settings, log *slog.Logger) error {
	if err := required(s, "auth-url", "mongo-uri", "amqp-url"); err != nil {
		return err
	}
	if _, err := amqpQueueType(s); err != nil {
		return err
	}
	limits, err := httpLimits(s)
	if err != nil {
		return err
	}
	partSize, err := s.size("part-size")
	if err != nil {
		return err
	}
	maxUpload, err := s.size("max-upload-size")
	if err != nil {
		return err
	}
	chunk, err := chunkSize(s)
	if err != nil {
		return err
	}
	if partSize%chunk != 0 {
		return badSetting("--gridfs-chunk-size %s must divide --part-size %s", formatSize(chunk), formatSize(partSize))
	}
	if err := staleLimit("sweep-stale-after", s.dur("sweep-stale-after")); err != nil {
		return err
	}
	private, err := allowPrivate(s, log)
	if err != nil {
		return err
	}
	authURL := strings.TrimRight(s.str("auth-url"), "/")
	issuer := s.str("jwt-issuer")
	verifier := &token.Verifier{Alg: s.str("jwt-alg"), Issuer: issuer, Leeway: 30 * time.Second}
	var remoteKeys *token.RemoteKeys
	switch verifier.Alg {
	case token.EdDSA:
		remoteKeys = &token.RemoteKeys{URL: authURL + "/.well-known/jwks.json"}
		verifier.Keys = remoteKeys
		if err := remoteKeys.Refresh(ctx); err != nil {
			log.Warn("auth's key set is not reachable yet; readiness waits for it", "err", err)
		}
	case token.HS256:
		_, keys, err := loadKeys(s)
		if err != nil {
			return err
		}
		verifier.Keys = token.StaticKeys(keys)
	default:
		return badSetting("--jwt-alg must be EdDSA or HS256, not %q", verifier.Alg)
	}
	db, err := openMongo(ctx, s, log, chunk)
	if err != nil {
		return err
	}
	defer db.Close(context.WithoutCancel(ctx))
	m := metrics.New()
	// When the broker comes back, the sweeper publishes at once the jobs whose publish failed
	// meanwhile (it is set up below; Reconnected only signals it).
	sweeper := &worker.Sweeper{}
	q, err := dialQueueThen(ctx, s, log, m, "v2md-gateway", sweeper.Reconnected)
	if err != nil {
		return err
	}
	defer q.Close()
	loginLimit, registerLimit, proxies, err := throttling(s)
	if err != nil {
		return err
	}
	revocations := &auth.RemoteRevocations{URL: authURL + "/v1/revocations", Interval: s.dur("revocations-refresh"), Logger: log}
	verifier.Revocations = revocations
	accounts := &auth.Remote{BaseURL: authURL, Client: &http.Client{Timeout: 30 * time.Second}, Revocations: revocations,
		PersonalTTL: s.dur("personal-token-cache")}
	// Job changes come from every converter on the broker; this gateway's event streams share
	// one subscription, relayed into local.
	updates, local := q.Updates(""), inproc.New()
	// Publish failures and redeliveries are counted here, once.
	quotas, retention, err := quotaPolicy(s)
	if err != nil {
		return err
	}
	svc := &jobs.Service{Jobs: db.Jobs(), Uploads: db.Uploads(), Blobs: db.Blobs(), Queue: m.CountQueue(q), Updates: updates,
		PartSize: partSize, MaxUploadSize: maxUpload, Logger: log, Metrics: m, TracerProvider: s.tracer(),
		Quotas: quotas, Limits: db.Limits(), Retention: retention}
	h := api.New(api.Config{
		Accounts: accounts, Verifier: &auth.Verifier{JWT: verifier, Personal: accounts, States: revocations},
		PersonalTokens: accounts, UserAdmin: accounts, TracerProvider: s.tracer(),
		Service: svc, Limits: limits, Updates: local,
		Webhooks: &webhook.Service{Store: db.Webhooks(), AllowPrivate: private, Logger: log},
		Admin:    &jobs.Admin{Jobs: db.Jobs(), Letters: q, Logger: log},
		Ready: func(ctx context.Context) error {
			var keysErr error
			if remoteKeys != nil && !remoteKeys.Loaded() {
				keysErr = remoteKeys.Refresh(ctx)
			}
			var revErr error
			if !revocations.Loaded() {
				revErr = revocations.Refresh(ctx)
			}
			// Not the broker: uploads and downloads work without it, and the sweeper
			// publishes the jobs that could not be published once it is back.
			return errors.Join(db.Ping(ctx), keysErr, revErr)
		},
		Logger: log, Metrics: m,

		Revoker: accounts, LoginLimit: loginLimit, RegisterLimit: registerLimit, TrustedProxies: proxies,
	})
	sweeper.Service, sweeper.UploadTTL, sweeper.Interval = svc, s.dur("upload-ttl"), s.dur("sweep-interval")
	sweeper.QueuedAfter, sweeper.StaleAfter, sweeper.Logger = s.dur("sweep-queued-after"), s.dur("sweep-stale-after"), log
	sweeper.Lease = db.Lease()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := newGroup(cancel)
	g.Go("http", func() error { return serveHTTP(ctx, log, s.str("listen"), s.str("metrics-addr"), h, m, limits) })
	g.Go("sweeper", func() error { sweeper.Run(ctx); return nil })
	g.Go("revocations", func() error { revocations.Run(ctx); return nil })
	g.Go("job updates", func() error { relayUpdates(ctx, log, updates, local); return nil })
	return g.Wait()
}

// relayUpdates relays from into to until ctx ends. While from cannot be subscribed to, the
// event streams still see every change, from the store, only later.
func relayUpdates(ctx context.Context, log *slog.Logger, from, to server.JobUpdates) {
	for {
		err := inproc.Relay(ctx, from, to)
		if ctx.Err() != nil {
			return
		}
		log.Warn("no job updates from the broker; event streams read the store until they come back", "err", err)
		t := time.NewTimer(2 * time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// ----------------------------------------------------------------- convert

func convertCommand(stderr io.Writer) subcommand {
	return service(stderr, "convert", "Run a converter: consumes queue video, converts with ffmpeg, stores MP3s in GridFS", ":8082", "127.0.0.1:9082", runConvert,
		mongoSettings, gridfsSettings, amqpSettings, converterSettings, []setting{
			{"stale-after", worker.DefaultStaleAfter, "a converting job with no heartbeat for this long is taken over from its (dead) worker"},
		})
}

func runConvert(ctx context.Context, s *settings, log *slog.Logger) error {
	if err := required(s, "mongo-uri", "amqp-url"); err != nil {
		return err
	}
	if _, err := amqpQueueType(s); err != nil {
		return err
	}
	if err := staleLimit("stale-after", s.dur("stale-after")); err != nil {
		return err
	}
	chunk, err := chunkSize(s)
	if err != nil {
		return err
	}
	conv, err := newConverter(ctx, s, log)
	if err != nil {
		return err
	}
	db, err := openMongo(ctx, s, log, chunk)
	if err != nil {
		return err
	}
	defer db.Close(context.WithoutCancel(ctx))
	m := metrics.New()
	q, err := dialQueue(ctx, s, log, m, "v2md-convert")
	if err != nil {
		return err
	}
	defer q.Close()
	w := &worker.Converter{Jobs: db.Jobs(), Blobs: db.Blobs(), Queue: m.CountQueue(q), Converter: conv, TmpDir: s.str("tmp-dir"),
		StaleAfter: s.dur("stale-after"), Logger: log, Metrics: m, Updates: q.Updates(""), MaxDuration: s.dur("max-duration"), Limits: db.Limits(),
		TracerProvider: s.tracer()}
	if _, err := w.CleanWorkDirs(ctx); err != nil {
		return err
	}
	h := api.New(api.Config{
		Ready:  func(ctx context.Context) error { return errors.Join(db.Ping(ctx), q.Ping(ctx), conv.Check(ctx)) },
		Logger: log, Metrics: m,
	})
	return runConsumer(ctx, s, log, h, m, q, server.TopicVideo, concurrency(s), s.dur("shutdown-timeout"), w.Handle)
}

// runConsumer serves h (and m's metrics) and consumes topic until ctx ends; running handlers
// get grace to finish.
func runConsumer(ctx context.Context, s *settings, log *slog.Logger, h http.Handler, m *metrics.Metrics, q server.Queue, topic string, n int, grace time.Duration, handle server.Handler) error {
	limits, err := httpLimits(s)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work, stopWork := drain(ctx, grace)
	defer stopWork()
	g := newGroup(cancel)
	g.Go("http", func() error { return serveHTTP(ctx, log, s.str("listen"), s.str("metrics-addr"), h, m, limits) })
	g.Go("consumer", func() error { return m.CountQueue(q).Consume(ctx, topic, n, workIn(work, handle)) })
	log.Info("consuming", "topic", topic, "concurrency", n)
	return g.Wait()
}

// ----------------------------------------------------------------- notify

func notifyCommand(stderr io.Writer) subcommand {
	return service(stderr, "notify", "Run the notifier: consumes queue mp3, mails each job's outcome over SMTP and posts it to the owner's webhooks", ":8083", "127.0.0.1:9083", runNotify,
		[]setting{
			{"public-url", "", "the gateway's URL as users reach it, for the download command in mails"},
			{"max-attempts", server.DefaultMailAttempts, "send attempts of a mail (about an hour) before its event is dead-lettered"},
			{"shutdown-timeout", 10 * time.Second, "on SIGTERM, how long a mail being sent may take"},
		}, mongoSettings, amqpSettings, smtpSettings, webhookSettings, retentionSettings)
}

func runNotify(ctx context.Context, s *settings, log *slog.Logger) error {
	if err := required(s, "mongo-uri", "amqp-url", "smtp-addr"); err != nil {
		return err
	}
	if _, err := amqpQueueType(s); err != nil {
		return err
	}
	mailer, err := newMailer(s, log, "")
	if err != nil {
		return err
	}
	private, err := allowPrivate(s, log)
	if err != nil {
		return err
	}
	db, err := openMongo(ctx, s, log, 0)
	if err != nil {
		return err
	}
	defer db.Close(context.WithoutCancel(ctx))
	m := metrics.New()
	q, err := dialQueue(ctx, s, log, m, "v2md-notify")
	if err != nil {
		return err
	}
	defer q.Close()
	retention, err := retentionPolicy(s)
	if err != nil {
		return err
	}
	n := &worker.Notifier{Mailer: mailer, Sent: db.SentLog(), PublicURL: s.str("public-url"), Logger: log, Metrics: m,
		Webhooks: db.Webhooks(), Jobs: db.Jobs(), Deliverer: &webhook.Deliverer{AllowPrivate: private}, Retention: retention,
		TracerProvider: s.tracer()}
	h := api.New(api.Config{
		Ready: func(ctx context.Context) error {
			// Without SMTP nothing is delivered: not ready (the check keeps its answer a while).
			var smtpErr error
			if c, ok := mailer.(interface{ Check(context.Context) error }); ok {
				smtpErr = c.Check(ctx)
			}
			return errors.Join(db.Ping(ctx), q.Ping(ctx), smtpErr)
		},
		Logger: log, Metrics: m,
	})
	// One mail at a time: two deliveries of the same outcome must not race past the sent log.
	return runConsumer(ctx, s, log, h, m, q, server.TopicMP3, 1, s.dur("shutdown-timeout"), n.Handle)
}

// chunkSize reads --gridfs-chunk-size.
func chunkSize(s *settings) (int64, error) {
	chunk, err := s.size("gridfs-chunk-size")
	if err != nil {
		return 0, err
	}
	if chunk > 16<<20 {
		return 0, badSetting("--gridfs-chunk-size must be below 16 MiB")
	}
	return chunk, nil
}

// staleLimit refuses a stale-after limit shorter than worker.MinHeartbeats heartbeats: a live
// worker with one late heartbeat would be taken for dead and its job converted twice.
func staleLimit(name string, d time.Duration) error {
	if least := worker.MinHeartbeats * worker.DefaultHeartbeat; d < least {
		return badSetting("--%s %v is too short: it must span at least %d heartbeats (%v)", name, d, worker.MinHeartbeats, least)
	}
	return nil
}
