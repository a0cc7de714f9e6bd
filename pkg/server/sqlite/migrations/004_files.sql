-- The size of the user's own file when the upload was a smaller file made from it (0: the
-- upload was the whole file), and the MP3s of a job split by chapters, as JSON ('' for a job
-- of one MP3).
ALTER TABLE uploads ADD COLUMN source_size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN source_size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN files TEXT NOT NULL DEFAULT '';
