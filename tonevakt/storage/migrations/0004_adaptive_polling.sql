-- 0004: adaptive polling. A source that keeps returning nothing new is polled less often (up to 4× its
-- configured interval); one new document brings it back to the configured interval.

ALTER TABLE sources ADD COLUMN unchanged_streak INTEGER DEFAULT 0;
ALTER TABLE sources ADD COLUMN effective_interval_minutes INTEGER;
