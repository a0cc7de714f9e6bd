-- Administrators list everyone's jobs newest first, and the dead letters with when each died.
CREATE INDEX jobs_created ON jobs (created_at DESC, id DESC);
ALTER TABLE messages ADD COLUMN dead_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_dead ON messages (dead, topic, dead_at, id);
