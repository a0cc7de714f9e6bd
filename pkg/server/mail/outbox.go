package mail

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// Outbox "sends" mail by writing each message as an RFC 5322 .eml file into Dir, and logging
// one line about it. A file appears whole or not at all: it is written under a temporary
// name starting with "." and renamed into place.
type Outbox struct {
	Dir    string
	From   string
	Logger *slog.Logger
}

var _ server.Mailer = (*Outbox)(nil)

// Send writes m to a new file in o.Dir, creating the directory when needed.
func (o *Outbox) Send(ctx context.Context, m server.Mail) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	msg, err := formatMessage(o.From, m, now)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	name := now.UTC().Format("20060102T150405.000000000Z") + "-" + randomHex(4) + ".eml"
	path := filepath.Join(o.Dir, name)
	if err := writeFileAtomic(path, msg.Data); err != nil {
		return fmt.Errorf("outbox: write %s: %w", path, err)
	}
	if o.Logger != nil {
		o.Logger.InfoContext(ctx, "mail written to outbox", "user_ref", server.UserRef(msg.To), "subject", m.Subject, "path", path)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.eml")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
