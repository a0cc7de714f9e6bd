CREATE TABLE users (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
	password_hash BLOB NOT NULL,
	created_at    INTEGER NOT NULL
);

CREATE TABLE uploads (
	id         TEXT PRIMARY KEY,
	owner      TEXT NOT NULL,
	filename   TEXT NOT NULL,
	size       INTEGER NOT NULL,
	part_size  INTEGER NOT NULL,
	sha256     TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL
);

CREATE TABLE jobs (
	id          TEXT PRIMARY KEY,
	owner       TEXT NOT NULL,
	state       TEXT NOT NULL,
	progress    INTEGER NOT NULL DEFAULT 0,
	error       TEXT NOT NULL DEFAULT '',
	filename    TEXT NOT NULL,
	size        INTEGER NOT NULL,
	video_fid   TEXT NOT NULL,
	mp3_fid     TEXT NOT NULL UNIQUE,
	attempts    INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	finished_at INTEGER
);
CREATE INDEX jobs_owner ON jobs (owner, created_at DESC);
CREATE INDEX jobs_state ON jobs (state, updated_at);

CREATE TABLE messages (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	topic       TEXT NOT NULL,
	body        BLOB NOT NULL,
	attempt     INTEGER NOT NULL DEFAULT 0,
	not_before  INTEGER NOT NULL,
	lease_until INTEGER NOT NULL DEFAULT 0,
	dead        INTEGER NOT NULL DEFAULT 0,
	error       TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL
);
CREATE INDEX messages_ready ON messages (topic, dead, not_before);

CREATE TABLE sent (
	key     TEXT PRIMARY KEY,
	sent_at INTEGER NOT NULL
);
