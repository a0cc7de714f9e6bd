-- Retention and quotas: the stored MP3's size, whether the video was deleted and whether the
-- MP3s expired; the open uploads of a user; the limits an administrator set for a user; and
-- the janitor's lease.
ALTER TABLE jobs ADD COLUMN mp3_size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN video_deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN expired INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX uploads_owner ON uploads (owner);
CREATE TABLE limits (
	owner  TEXT PRIMARY KEY COLLATE NOCASE,
	limits TEXT NOT NULL
);
CREATE TABLE leases (
	name       TEXT PRIMARY KEY,
	holder     TEXT NOT NULL,
	expires_at INTEGER NOT NULL
);
