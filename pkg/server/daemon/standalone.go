package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/internal/version"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/api"
	"github.com/v2m/v2m/pkg/server/auth"
	"github.com/v2m/v2m/pkg/server/disk"
	"github.com/v2m/v2m/pkg/server/ffmpeg"
	"github.com/v2m/v2m/pkg/server/inproc"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/server/mail"
	"github.com/v2m/v2m/pkg/server/metrics"
	"github.com/v2m/v2m/pkg/server/sandbox"
	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/server/token"
	"github.com/v2m/v2m/pkg/server/tracing"
	"github.com/v2m/v2m/pkg/server/webhook"
	"github.com/v2m/v2m/pkg/server/worker"
	"github.com/v2m/v2m/pkg/wire"
)

// Settings shared by more than one service.
var (
	smtpSettings = []setting{
		{"smtp-addr", "", "SMTP server host:port"},
		{"smtp-from", "v2m <v2m@localhost>", "sender address of the mails"},
		{"smtp-user", "", "SMTP user (PLAIN authentication)"},
		{"smtp-password-file", "", "file holding the SMTP password"},
		{"smtp-tls", "auto", "auto (STARTTLS when offered), starttls, tls (implicit) or none"},
	}
	converterSettings = []setting{
		{"concurrency", 0, "conversions run at once; 0 for one per CPU"},
		{"job-timeout", 30 * time.Minute, "longest one conversion may take"},
		{"bitrate", "", `MP3 bitrate such as 192k; empty for VBR quality 2`},
		{"encode-threads", 0, "MP3 encoders of one conversion of 2 minutes of audio or more, on a CPU each; 0 for the CPUs that other conversions leave free (GOMAXPROCS: the container's CPU limit), 1 to encode serially"},
		{"max-attempts", server.DefaultMaxAttempts, "deliveries of a message before it is dead-lettered"},
		{"tmp-dir", "", "directory for temporary video and MP3 files (default: the system's)"},
		{"shutdown-timeout", 25 * time.Second, "on SIGTERM, how long running conversions may finish before they are requeued"},
		{"max-duration", time.Duration(0), "longest audio one job may convert, checked when the video is probed; 0 for no limit (an administrator can set it per user)"},
	}
	// retentionSettings say how long files are kept: where the janitor runs (standalone, the
	// gateway) and where mails say until when an MP3 can be downloaded (notify).
	retentionSettings = []setting{
		{"mp3-ttl", jobs.DefaultMP3TTL, "how long MP3s (and the videos of failed jobs) are kept after their job ends; 0 keeps them for ever"},
	}
	// quotaSettings are the per-user limits of users for whom an administrator set none; 0 is
	// no limit.
	quotaSettings = []setting{
		{"keep-video", false, "keep a done job's video until the job expires, instead of deleting it once its MP3 is stored"},
		{"quota-bytes", "0", "per user: most bytes of videos and MP3s stored, open uploads counted at their size; 0 for no limit"},
		{"max-open-uploads", 0, "per user: most uploads started and not completed; 0 for no limit"},
		{"max-active-jobs", 0, "per user: most jobs queued or converting at once; 0 for no limit"},
	}
	uploadSettings = []setting{
		{"part-size", formatSize(jobs.DefaultPartSize), "upload part size"},
		{"max-upload-size", formatSize(jobs.DefaultMaxUploadSize), "largest video accepted"},
		{"upload-ttl", worker.DefaultUploadTTL, "uploads not completed within this time are discarded"},
	}
	tokenSettings = []setting{
		{"jwt-issuer", "v2m", "the iss claim of tokens"},
	}
	webhookSettings = []setting{
		{"webhook-allow-private", false, "let webhooks reach private, loopback, link-local and other internal addresses (in-cluster receivers, tests); refused by default, at creation and on every delivery"},
	}
)

func standaloneCommand(stderr io.Writer) subcommand {
	cmd := &cobra.Command{
		Use:   "standalone",
		Short: "Run every service in one process on embedded storage (SQLite, local disk)",
		Long: "standalone keeps users and jobs in SQLite and files on local disk under --data, queues work in\n" +
			"the database, converts with ffmpeg, and mails over SMTP when --smtp-addr is set or else writes\n" +
			"each mail as an .eml file under <data>/outbox.",
		Args: cobra.NoArgs,
	}
	s := bind(cmd, []setting{
		{"addr", "127.0.0.1:8080", "HTTP listen address"},
		metricsSetting("127.0.0.1:9090"),
		{"data", "./data", "data directory"},
		{"public-url", "", "the server's URL as users reach it, for the mails (default: http://<addr>)"},
		{"token-ttl", token.DefaultTTL, "lifetime of tokens"},
		{"bcrypt-cost", auth.DefaultCost, "bcrypt cost of password hashes"},
		{"sweep-interval", worker.DefaultSweepInterval, "how often the janitor applies retention and removes abandoned uploads and orphaned files"},
	}, httpSettings, tokenSettings, uploadSettings, converterSettings, smtpSettings, throttleSettings, hashSettings, webhookSettings,
		retentionSettings, quotaSettings, tracingSettings)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := s.load(); err != nil {
			return err
		}
		log, err := newLogger(s, stderr)
		if err != nil {
			return err
		}
		flush, err := startTracing(cmd.Context(), s, log, "standalone")
		if err != nil {
			return err
		}
		defer flush()
		return runStandalone(cmd.Context(), s, log)
	}
	return subcommand{cmd: cmd, settings: s, paths: servicePaths}
}

func runStandalone(ctx context.Context, s *settings, log *slog.Logger) error {
	limits, err := httpLimits(s)
	if err != nil {
		return err
	}
	private, err := allowPrivate(s, log)
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
	if err := outside(s.str("tmp-dir"), s.str("data")); err != nil {
		return err
	}
	conv, err := newConverter(ctx, s, log)
	if err != nil {
		return err
	}
	data := s.str("data")
	db, err := sqlite.Open(ctx, filepath.Join(data, "v2m.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	blobs, err := disk.New(filepath.Join(data, "blobs"))
	if err != nil {
		return err
	}
	key, err := token.LoadOrCreateEd25519(filepath.Join(data, "jwt-ed25519.pem"))
	if err != nil {
		return err
	}
	mailer, err := newMailer(s, log, filepath.Join(data, "outbox"))
	if err != nil {
		return err
	}
	publicURL := s.str("public-url")
	if publicURL == "" {
		publicURL = "http://" + s.str("addr")
	}
	m := metrics.New()
	q := db.Queue(sqlite.QueueConfig{MaxAttempts: s.int("max-attempts"), Logger: log, TracerProvider: s.tracer()})
	// Mails keep trying for about an hour before they give up, as notify's do.
	mailQ := db.Queue(sqlite.QueueConfig{MaxAttempts: server.DefaultMailAttempts, Logger: log, TracerProvider: s.tracer()})
	videoQ := m.CountQueue(q) // publish failures and redeliveries are counted here, once
	updates := inproc.New()   // job changes, from the converter to the event streams
	quotas, retention, err := quotaPolicy(s)
	if err != nil {
		return err
	}
	svc := &jobs.Service{Jobs: db.Jobs(), Uploads: db.Uploads(), Blobs: blobs, Queue: videoQ, Updates: updates,
		PartSize: partSize, MaxUploadSize: maxUpload, Logger: log, Metrics: m, TracerProvider: s.tracer(),
		Quotas: quotas, Limits: db.Limits(), Retention: retention}
	if err := worker.Recover(ctx, db.Jobs(), log); err != nil {
		return err
	}
	issuer := s.str("jwt-issuer")
	changes := api.NewSignal()
	loginLimit, registerLimit, proxies, err := throttling(s)
	if err != nil {
		return err
	}
	accounts, err := accountService(s, db.Users(), db.Revocations(), key, issuer)
	if err != nil {
		return err
	}
	accounts.Personal, accounts.Issuer, accounts.Logger = db.PersonalTokens(), issuer, log
	handler := api.New(api.Config{
		Changes:  changes,
		Updates:  updates,
		Accounts: accounts,
		Verifier: &auth.Verifier{
			JWT:      &token.Verifier{Alg: token.EdDSA, Issuer: issuer, Keys: token.StaticKeys{key}, Revocations: db.Revocations()},
			Personal: accounts, States: auth.StoreStates{Users: db.Users()},
		},
		PersonalTokens: accounts, UserAdmin: accounts,
		Service:  svc,
		Webhooks: &webhook.Service{Store: db.Webhooks(), AllowPrivate: private, Logger: log},
		Admin:    &jobs.Admin{Jobs: db.Jobs(), Letters: q, Logger: log},
		Limits:   limits,
		Ready:    func(ctx context.Context) error { return errors.Join(db.Ping(ctx), conv.Check(ctx)) },
		Logger:   log, Metrics: m,

		Revoker: accounts, LoginLimit: loginLimit, RegisterLimit: registerLimit, TrustedProxies: proxies,
		TracerProvider: s.tracer(),
	})
	converter := &worker.Converter{Jobs: db.Jobs(), Blobs: blobs, Queue: videoQ, Converter: conv, TmpDir: s.str("tmp-dir"),
		Logger: log, Metrics: m, Changed: changes.Notify, Updates: updates, MaxDuration: s.dur("max-duration"), Limits: db.Limits(),
		TracerProvider: s.tracer()}
	if _, err := converter.CleanWorkDirs(ctx); err != nil {
		return err
	}
	notifier := &worker.Notifier{Mailer: mailer, Sent: db.SentLog(), PublicURL: publicURL, Logger: log, Metrics: m,
		Webhooks: db.Webhooks(), Jobs: db.Jobs(), Deliverer: &webhook.Deliverer{AllowPrivate: private}, Retention: retention,
		TracerProvider: s.tracer()}
	sweeper := &worker.Sweeper{Service: svc, UploadTTL: s.dur("upload-ttl"), Interval: s.dur("sweep-interval"), Logger: log}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work, stopWork := drain(ctx, s.dur("shutdown-timeout"))
	defer stopWork()
	g := newGroup(cancel)
	g.Go("http", func() error { return serveHTTP(ctx, log, s.str("addr"), s.str("metrics-addr"), handler, m, limits) })
	g.Go("converter", func() error {
		return videoQ.Consume(ctx, server.TopicVideo, concurrency(s), workIn(work, converter.Handle))
	})
	g.Go("notifier", func() error {
		return m.CountQueue(mailQ).Consume(ctx, server.TopicMP3, 1, workIn(work, notifier.Handle))
	})
	g.Go("sweeper", func() error { sweeper.Run(ctx); return nil })
	log.Info("v2md standalone started", "version", version.Version, "addr", s.str("addr"), "data", data,
		"concurrency", concurrency(s), "public_url", publicURL)
	err = g.Wait()
	log.Info("v2md standalone stopped")
	return err
}

// allowPrivate reads --webhook-allow-private, and warns when it is set.
func allowPrivate(s *settings, log *slog.Logger) (bool, error) {
	allow, err := s.flag("webhook-allow-private")
	if allow {
		log.Warn("--webhook-allow-private: webhooks may reach private, loopback and other internal addresses")
	}
	return allow, err
}

// workIn runs h with the work context instead of the consumer's, so that a running job can
// finish after the consumer stops taking new ones; the delivery's trace goes with it.
func workIn(work context.Context, h server.Handler) server.Handler {
	return func(ctx context.Context, d server.Delivery) error { return h(tracing.Carry(ctx, work), d) }
}

func newConverter(ctx context.Context, s *settings, log *slog.Logger) (*ffmpeg.Converter, error) {
	box, err := sandbox.New()
	if err != nil {
		return nil, err
	}
	if abi := sandbox.ABI(); abi > 0 {
		log.Info("ffmpeg runs confined by Landlock", "landlock_abi", abi)
	} else {
		log.Warn("this kernel offers no Landlock: ffmpeg runs unconfined, with the demuxer allow-list, an empty environment and a private work dir")
	}
	if s.int("encode-threads") < 0 {
		return nil, badSetting("--encode-threads must be 0 (the free CPUs) or more")
	}
	conv, err := ffmpeg.New(ffmpeg.Config{Bitrate: s.str("bitrate"), Timeout: s.dur("job-timeout"), Logger: log, Sandbox: box,
		EncodeThreads: s.int("encode-threads"), TracerProvider: s.tracer()})
	if err != nil {
		return nil, err
	}
	if err := conv.Check(ctx); err != nil {
		return nil, err
	}
	if s.int("concurrency") < 0 {
		return nil, badSetting("--concurrency must be 0 (one per CPU) or more")
	}
	return conv, nil
}

// newMailer returns an SMTP mailer when --smtp-addr is set, else an outbox in outbox (or an
// error when there is no outbox to fall back to).
func newMailer(s *settings, log *slog.Logger, outbox string) (server.Mailer, error) {
	from := s.str("smtp-from")
	if s.str("smtp-addr") == "" {
		if outbox == "" {
			return nil, badSetting("--smtp-addr is required")
		}
		log.Info("no --smtp-addr: mails are written to the outbox", "dir", outbox)
		return &mail.Outbox{Dir: outbox, From: from, Logger: log}, nil
	}
	password, err := s.secret("smtp-password")
	if err != nil {
		return nil, err
	}
	mode := strings.ToLower(s.str("smtp-tls"))
	switch mode {
	case "auto", "starttls", "tls", "none":
	default:
		return nil, badSetting("--smtp-tls must be auto, starttls, tls or none, not %q", mode)
	}
	return &mail.SMTP{Addr: s.str("smtp-addr"), From: from, User: s.str("smtp-user"), Password: password, TLS: mode}, nil
}

// outside refuses a --tmp-dir inside the data directory: ffmpeg's work directories must not
// sit next to users' files.
func outside(tmp, data string) error {
	if tmp == "" {
		return nil
	}
	t, err1 := filepath.Abs(tmp)
	d, err2 := filepath.Abs(data)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("--tmp-dir: %w", err)
	}
	if rel, err := filepath.Rel(d, t); err == nil && (rel == "." || !strings.HasPrefix(rel, "..")) {
		return badSetting("--tmp-dir %s is inside --data %s: choose a directory outside the data directory", tmp, data)
	}
	return nil
}

// quotaPolicy reads the default per-user limits and the retention policy.
func quotaPolicy(s *settings) (jobs.Quotas, jobs.Retention, error) {
	r, err := retentionPolicy(s)
	if err != nil {
		return jobs.Quotas{}, r, err
	}
	keep, err := s.flag("keep-video")
	if err != nil {
		return jobs.Quotas{}, r, err
	}
	r.KeepVideo = keep
	bytes, err := wire.ParseSize(s.str("quota-bytes"))
	if err != nil {
		return jobs.Quotas{}, r, badSetting("--quota-bytes: %v", err)
	}
	q := jobs.Quotas{Bytes: bytes, OpenUploads: s.int("max-open-uploads"), ActiveJobs: s.int("max-active-jobs")}
	if q.OpenUploads < 0 || q.ActiveJobs < 0 {
		return q, r, badSetting("--max-open-uploads and --max-active-jobs must be 0 (no limit) or more")
	}
	return q, r, nil
}

// retentionPolicy reads --mp3-ttl: 0 keeps files for ever.
func retentionPolicy(s *settings) (jobs.Retention, error) {
	ttl := s.dur("mp3-ttl")
	switch {
	case ttl < 0:
		return jobs.Retention{}, badSetting("--mp3-ttl must be 0 (keep for ever) or more, not %s", ttl)
	case ttl == 0:
		ttl = -1 // for ever
	}
	return jobs.Retention{MP3TTL: ttl}, nil
}
