-- The MP3 options of an upload and of its job, as JSON (see options.go); '' for the defaults,
-- which is what the rows from before this migration get.
ALTER TABLE uploads ADD COLUMN options TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN options TEXT NOT NULL DEFAULT '';
