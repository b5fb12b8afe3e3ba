-- 0008: story tone computed once per document and kept, so that the views stop recomputing the archive.
--
-- `document_tone_computed` is the definition (the one of 0002: a human label wins over the active model's
-- score; the earliest copy of a story speaks for it) with two more columns: whether the row is its story's
-- first copy, and the story's number of copies. It reads every document, so nothing reads it on a query
-- path: the storage module (storage/kept_tone.py) keeps its rows in `document_tone_kept`, recomputing only the
-- stories a write touched (a score, a label, a document that changed story) and all of it when the active
-- model changes. The views of 0002 and 0003 read the kept rows; their columns and results are unchanged.

CREATE VIEW document_tone_computed AS
WITH active AS (SELECT id FROM models WHERE active LIMIT 1),
tone AS (
    SELECT
        d.id AS document_id,
        d.voice,
        coalesce(d.story_id, d.id) AS story,
        d.source_id,
        d.story_id,
        d.published_at,
        strftime(timezone('Europe/Oslo', d.published_at), '%G-W%V') AS week,
        s.model,
        CASE l.label WHEN 'positive' THEN 1.0 WHEN 'negative' THEN -1.0 WHEN 'neutral' THEN 0.0 ELSE s.tone END
            AS tone,
        coalesce(l.label, s.label) AS label,
        l.label IS NOT NULL AS human_label,
        d.region,
        d.regions,
        d.topics,
        d.rating,
        d.paywalled
    FROM documents d
    LEFT JOIN scores s ON s.document_id = d.id AND s.model = (SELECT id FROM active)
    LEFT JOIN labels l ON l.document_id = d.id
    WHERE d.relevant AND (s.document_id IS NOT NULL OR l.document_id IS NOT NULL)
)
SELECT
    *,
    row_number() OVER (PARTITION BY voice, story ORDER BY published_at, document_id) = 1 AS first_copy,
    count(*) OVER (PARTITION BY voice, story) AS copies
FROM tone;

CREATE TABLE document_tone_kept (
    document_id  VARCHAR NOT NULL,
    voice        VARCHAR NOT NULL,
    story        VARCHAR NOT NULL,
    source_id    VARCHAR NOT NULL,
    story_id     VARCHAR,
    published_at TIMESTAMPTZ NOT NULL,
    week         VARCHAR NOT NULL,
    model        VARCHAR,
    tone         DOUBLE NOT NULL,
    label        VARCHAR NOT NULL,
    human_label  BOOLEAN NOT NULL,
    region       VARCHAR,
    regions      VARCHAR[],
    topics       VARCHAR[],
    rating       INTEGER,
    paywalled    BOOLEAN NOT NULL,
    first_copy   BOOLEAN NOT NULL,
    copies       BIGINT NOT NULL
);

-- In publication order, so that a filter on week or published_at skips most of the file.
INSERT INTO document_tone_kept SELECT * FROM document_tone_computed ORDER BY published_at, document_id;

-- A report reads the passages of a few chosen stories: by id, through this index, not by a scan of every score.
CREATE INDEX scores_document ON scores (document_id);

DROP VIEW weekly_rating;
DROP VIEW weekly_volume;
DROP VIEW weekly_region_tone;
DROP VIEW weekly_topic_tone;
DROP VIEW weekly_tone;
DROP VIEW story_tone;
DROP VIEW document_tone;

-- document_tone for the documents published between two instants (the view is all of them): the Parquet
-- export writes it a week at a time, reading only that week's documents (storage/snapshot.py).
CREATE MACRO document_tone_published(lo, hi) AS TABLE
SELECT
    k.document_id, k.source_id, k.voice, k.story_id, k.published_at, k.week, d.title, d.outlet, d.url, k.region,
    k.regions, k.topics, k.rating, k.paywalled, k.model, k.tone, k.label, k.human_label, s.passage
FROM (SELECT * FROM document_tone_kept WHERE published_at BETWEEN lo AND hi) k
JOIN (SELECT * FROM documents WHERE published_at BETWEEN lo AND hi) d ON d.id = k.document_id
LEFT JOIN scores s ON s.document_id = k.document_id AND s.model = k.model;

CREATE VIEW document_tone AS
SELECT * FROM document_tone_published('-infinity'::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ);

CREATE VIEW story_tone AS
SELECT
    k.document_id, k.source_id, k.voice, k.story_id, k.published_at, k.week, d.title, d.outlet, d.url, k.region,
    k.regions, k.topics, k.rating, k.paywalled, k.model, k.tone, k.label, k.human_label, s.passage
FROM document_tone_kept k
JOIN documents d ON d.id = k.document_id
LEFT JOIN scores s ON s.document_id = k.document_id AND s.model = k.model
WHERE k.first_copy;

-- The weekly views read the kept first copies directly (no join to the documents).
CREATE VIEW weekly_tone AS
SELECT
    week,
    voice,
    count(*) AS n,
    avg(tone) AS tone,
    CASE WHEN count(*) > 1 THEN avg(tone) - 1.96 * stddev_samp(tone) / sqrt(count(*)) END AS ci_low,
    CASE WHEN count(*) > 1 THEN avg(tone) + 1.96 * stddev_samp(tone) / sqrt(count(*)) END AS ci_high,
    avg(CASE WHEN label = 'negative' THEN 1.0 ELSE 0.0 END) AS share_negative,
    avg(CASE WHEN label = 'positive' THEN 1.0 ELSE 0.0 END) AS share_positive,
    count(*) < 5 AS thin
FROM document_tone_kept
WHERE first_copy
GROUP BY week, voice;

CREATE VIEW weekly_topic_tone AS
WITH tagged AS (
    SELECT week, voice, tone, unnest(topics) AS topic FROM document_tone_kept WHERE first_copy
)
SELECT
    week,
    topic,
    coalesce(voice, 'all') AS voice,
    count(*) AS n,
    avg(tone) AS tone,
    CASE WHEN count(*) > 1 THEN avg(tone) - 1.96 * stddev_samp(tone) / sqrt(count(*)) END AS ci_low,
    CASE WHEN count(*) > 1 THEN avg(tone) + 1.96 * stddev_samp(tone) / sqrt(count(*)) END AS ci_high
FROM tagged
GROUP BY GROUPING SETS ((week, topic, voice), (week, topic));

-- A story belongs to the regions it mentions and to its source's region (each once).
CREATE VIEW weekly_region_tone AS
WITH tagged AS (
    SELECT week, voice, tone,
           unnest(list_distinct(list_concat(coalesce(regions, []),
                                            CASE WHEN region IS NULL THEN [] ELSE [region] END))) AS region
    FROM document_tone_kept WHERE first_copy
)
SELECT
    week,
    region,
    coalesce(voice, 'all') AS voice,
    count(*) AS n,
    avg(tone) AS tone,
    CASE WHEN count(*) > 1 THEN avg(tone) - 1.96 * stddev_samp(tone) / sqrt(count(*)) END AS ci_low,
    CASE WHEN count(*) > 1 THEN avg(tone) + 1.96 * stddev_samp(tone) / sqrt(count(*)) END AS ci_high
FROM tagged
GROUP BY GROUPING SETS ((week, region, voice), (week, region));

CREATE VIEW weekly_volume AS
SELECT
    week,
    voice,
    count(*) AS stories,
    sum(copies)::BIGINT AS documents,
    (sum(copies) - count(*))::BIGINT AS copies
FROM document_tone_kept
WHERE first_copy
GROUP BY week, voice;

CREATE VIEW weekly_rating AS
SELECT
    k.week,
    k.source_id,
    s.kind AS source_kind,
    count(*) AS n,
    avg(k.rating) AS mean_rating,
    avg(k.tone) AS tone
FROM document_tone_kept k LEFT JOIN sources s ON s.id = k.source_id
WHERE k.first_copy AND k.rating IS NOT NULL
GROUP BY k.week, k.source_id, s.kind;
