-- 0004: adaptive polling. A source whose last fetch brought a new document is polled twice as often as
-- configured; a quiet source keeps its configured interval (the freshness promise).

ALTER TABLE sources ADD COLUMN unchanged_streak INTEGER DEFAULT 0;
ALTER TABLE sources ADD COLUMN effective_interval_minutes INTEGER;
