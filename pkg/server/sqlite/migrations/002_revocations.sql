CREATE TABLE revocations (
	jti        TEXT PRIMARY KEY,
	expires_at INTEGER NOT NULL
);
CREATE INDEX revocations_expiry ON revocations (expires_at);
