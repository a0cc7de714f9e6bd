package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// Uploads returns the database as a server.UploadStore.
func (d *DB) Uploads() server.UploadStore { return (*uploadStore)(d) }

type uploadStore DB

const uploadColumns = `id, owner, filename, size, source_size, part_size, sha256, options, created_at`

func scanUpload(row scanner) (*server.Upload, error) {
	var u server.Upload
	var opts string
	var created int64
	if err := row.Scan(&u.ID, &u.Owner, &u.Filename, &u.Size, &u.SourceSize, &u.PartSize, &u.SHA256, &opts, &created); err != nil {
		return nil, err
	}
	var err error
	if u.Options, err = decodeOptions(opts); err != nil {
		return nil, fmt.Errorf("upload %s: %w", u.ID, err)
	}
	u.CreatedAt = fromMS(created)
	return &u, nil
}

func (s *uploadStore) CreateUpload(ctx context.Context, u *server.Upload) error {
	opts, err := encodeOptions(u.Options)
	if err != nil {
		return fmt.Errorf("insert upload: %w", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO uploads (`+uploadColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, u.ID, u.Owner, u.Filename, u.Size, u.SourceSize, u.PartSize, u.SHA256, opts, ms(u.CreatedAt))
	if isUnique(err) {
		return server.Errorf(server.ECONFLICT, "upload %s exists", u.ID)
	}
	if err != nil {
		return fmt.Errorf("insert upload: %w", err)
	}
	return nil
}

func (s *uploadStore) Upload(ctx context.Context, id string) (*server.Upload, error) {
	u, err := scanUpload(s.db.QueryRowContext(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = ?`, id))
	if isNoRows(err) {
		return nil, notFound("upload", id)
	}
	if err != nil {
		return nil, fmt.Errorf("select upload: %w", err)
	}
	return u, nil
}

func (s *uploadStore) StaleUploads(ctx context.Context, before time.Time, limit int) ([]*server.Upload, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+uploadColumns+` FROM uploads
		WHERE created_at < ? ORDER BY created_at LIMIT ?`, ms(before), limit)
	if err != nil {
		return nil, fmt.Errorf("select stale uploads: %w", err)
	}
	defer rows.Close()
	var out []*server.Upload
	for rows.Next() {
		u, err := scanUpload(rows)
		if err != nil {
			return nil, fmt.Errorf("scan upload: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (s *uploadStore) DeleteUpload(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM uploads WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete upload: %w", err)
	}
	return nil
}

func (s *uploadStore) OpenUploads(ctx context.Context, owner string) (int, int64, error) {
	var n int
	var bytes int64
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(size), 0) FROM uploads WHERE owner = ?`, owner).Scan(&n, &bytes)
	if err != nil {
		return 0, 0, fmt.Errorf("count uploads of %s: %w", owner, err)
	}
	return n, bytes, nil
}
