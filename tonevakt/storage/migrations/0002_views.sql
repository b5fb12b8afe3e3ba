-- 0002: analyst views. The tone of a document is the human label when there is one, else the active model's.

CREATE VIEW document_tone AS
WITH active AS (SELECT id FROM models WHERE active LIMIT 1)
SELECT
    d.id AS document_id,
    d.source_id,
    d.voice,
    d.story_id,
    d.published_at,
    strftime(timezone('Europe/Oslo', d.published_at), '%G-W%V') AS week,
    d.title,
    d.outlet,
    d.url,
    d.region,
    d.regions,
    d.topics,
    d.rating,
    d.paywalled,
    s.model,
    CASE l.label WHEN 'positive' THEN 1.0 WHEN 'negative' THEN -1.0 WHEN 'neutral' THEN 0.0 ELSE s.tone END AS tone,
    coalesce(l.label, s.label) AS label,
    l.label IS NOT NULL AS human_label,
    s.passage
FROM documents d
LEFT JOIN scores s ON s.document_id = d.id AND s.model = (SELECT id FROM active)
LEFT JOIN labels l ON l.document_id = d.id
WHERE d.relevant AND (s.document_id IS NOT NULL OR l.document_id IS NOT NULL);

-- One row per story and voice: syndicated copies count once (the earliest copy speaks for the story).
CREATE VIEW story_tone AS
SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (
        PARTITION BY voice, coalesce(story_id, document_id) ORDER BY published_at, document_id) AS rn
    FROM document_tone
) WHERE rn = 1;

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
FROM story_tone
GROUP BY week, voice;
