-- 0006: failed items are remembered and retried. An article page of a `web` source or a later page of an
-- App Store feed that failed (or was not reached within the source's time budget) is kept here until a later
-- pass fetches it, or until it has failed collect.max_item_attempts times (then gave_up_at is set).

CREATE TABLE pending_items (
    source_id VARCHAR NOT NULL,
    url VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_attempt_at TIMESTAMPTZ,
    last_status VARCHAR,
    last_error VARCHAR,
    next_due_at TIMESTAMPTZ,
    gave_up_at TIMESTAMPTZ,
    PRIMARY KEY (source_id, url)
);

ALTER TABLE sources ADD COLUMN pending_items INTEGER DEFAULT 0;
ALTER TABLE sources ADD COLUMN items_given_up INTEGER DEFAULT 0;
