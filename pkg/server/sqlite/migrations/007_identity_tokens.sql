ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user';
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;

CREATE TABLE personal_tokens (
	id           TEXT PRIMARY KEY,
	owner        TEXT NOT NULL COLLATE NOCASE,
	name         TEXT NOT NULL,
	hash         TEXT NOT NULL UNIQUE,
	read_only    INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	last_used_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX personal_tokens_owner ON personal_tokens (owner, created_at DESC);
