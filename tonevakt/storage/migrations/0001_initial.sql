-- 0001: the storage contract of DESIGN.md. Every column is described in docs/schema.md.

CREATE TABLE sources (
    id                   VARCHAR PRIMARY KEY,
    kind                 VARCHAR NOT NULL,
    voice                VARCHAR NOT NULL,
    name                 VARCHAR,
    region               VARCHAR,
    url                  VARCHAR,
    enabled              BOOLEAN NOT NULL DEFAULT TRUE,
    interval_minutes     INTEGER,
    last_attempt_at      TIMESTAMPTZ,
    last_success_at      TIMESTAMPTZ,
    last_error_at        TIMESTAMPTZ,
    last_status          VARCHAR,
    last_error           VARCHAR,
    failing_since        TIMESTAMPTZ,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    next_due_at          TIMESTAMPTZ,
    etag                 VARCHAR,
    last_modified        VARCHAR,
    body_hash            VARCHAR,
    updated_at           TIMESTAMPTZ
);

CREATE TABLE documents (
    id                  VARCHAR PRIMARY KEY,
    source_id           VARCHAR NOT NULL,
    voice               VARCHAR NOT NULL,
    kind                VARCHAR NOT NULL,
    url                 VARCHAR,
    canonical_url       VARCHAR,
    title               VARCHAR NOT NULL,
    lead                VARCHAR,
    text                VARCHAR NOT NULL,
    author              VARCHAR,
    outlet              VARCHAR,
    published_at        TIMESTAMPTZ NOT NULL,
    published_estimated BOOLEAN NOT NULL DEFAULT FALSE,
    collected_at        TIMESTAMPTZ NOT NULL,
    language            VARCHAR,
    relevant            BOOLEAN,
    matched             VARCHAR[],
    topics              VARCHAR[],
    regions             VARCHAR[],
    region              VARCHAR,
    paywalled           BOOLEAN NOT NULL DEFAULT FALSE,
    rating              INTEGER,
    app_version         VARCHAR,
    story_id            VARCHAR,
    redactions          INTEGER NOT NULL DEFAULT 0,
    extra               VARCHAR
);

CREATE INDEX documents_published ON documents (published_at);
CREATE INDEX documents_story ON documents (story_id);

CREATE TABLE models (
    id            VARCHAR PRIMARY KEY,
    backend       VARCHAR NOT NULL,
    description   VARCHAR,
    dev_macro_f1  DOUBLE,
    active        BOOLEAN NOT NULL DEFAULT FALSE,
    registered_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE scores (
    document_id VARCHAR NOT NULL,
    model       VARCHAR NOT NULL,
    tone        DOUBLE NOT NULL,
    label       VARCHAR NOT NULL,
    p_negative  DOUBLE NOT NULL,
    p_neutral   DOUBLE NOT NULL,
    p_positive  DOUBLE NOT NULL,
    passage     VARCHAR,
    n_passages  INTEGER,
    scored_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (document_id, model)
);

CREATE TABLE labels (
    document_id VARCHAR PRIMARY KEY,
    label       VARCHAR NOT NULL,
    labelled_by VARCHAR,
    note        VARCHAR,
    labelled_at TIMESTAMPTZ NOT NULL
);

CREATE SEQUENCE fetch_log_id START 1;
CREATE TABLE fetch_log (
    id            BIGINT PRIMARY KEY DEFAULT nextval('fetch_log_id'),
    source_id     VARCHAR NOT NULL,
    url           VARCHAR,
    status        VARCHAR NOT NULL,
    http_status   INTEGER,
    reason        VARCHAR,
    started_at    TIMESTAMPTZ NOT NULL,
    duration_ms   INTEGER,
    bytes         BIGINT,
    items         INTEGER,
    new_documents INTEGER
);

CREATE TABLE imported_files (
    content_hash VARCHAR PRIMARY KEY,
    source_id    VARCHAR NOT NULL,
    path         VARCHAR NOT NULL,
    rows         INTEGER NOT NULL,
    imported_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE reports (
    week        VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,   -- 'written' or 'sent'
    path        VARCHAR,
    recipients  VARCHAR,
    done_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (week, kind)
);
