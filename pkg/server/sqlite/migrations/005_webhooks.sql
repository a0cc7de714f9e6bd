-- Users' webhooks (server.Webhook): events is a comma-separated list in the order of
-- server.WebhookEvents; secret signs the deliveries, so it is kept as it is.
CREATE TABLE webhooks (
	id         TEXT PRIMARY KEY,
	owner      TEXT NOT NULL,
	url        TEXT NOT NULL,
	events     TEXT NOT NULL,
	secret     TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX webhooks_owner ON webhooks (owner, created_at, id);
