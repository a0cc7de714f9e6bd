// Package sqlrows reads database/sql result sets into slices, for the SQL stores.
package sqlrows

import (
	"database/sql"
	"fmt"
)

// Scanner is what a row offers: *sql.Row and *sql.Rows.
type Scanner interface{ Scan(dest ...any) error }

// Collect reads every row of rows with scan, and closes rows.
func Collect[T any](rows *sql.Rows, scan func(Scanner) (*T, error)) ([]*T, error) {
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("read rows: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read rows: %w", err)
	}
	return out, nil
}
