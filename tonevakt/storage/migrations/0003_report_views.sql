-- 0003: views behind the weekly report and the dashboard. Like weekly_tone they read story_tone, so that
-- syndicated copies count once and a human label overrides the model. Every figure in the report is a row
-- of weekly_tone or of one of these views.

-- Tone per topic, voice and week. voice = 'all' pools the voices (a story tagged with two topics counts in both).
CREATE VIEW weekly_topic_tone AS
WITH tagged AS (
    SELECT st.*, t.topic
    FROM story_tone st, (SELECT document_id, unnest(topics) AS topic FROM story_tone) t
    WHERE t.document_id = st.document_id
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

-- Tone per region, voice and week. A story belongs to the regions it mentions and to its source's region.
CREATE VIEW weekly_region_tone AS
WITH tagged AS (
    SELECT document_id, unnest(regions) AS region_id FROM story_tone
    UNION
    SELECT document_id, region AS region_id FROM story_tone WHERE region IS NOT NULL
)
SELECT
    st.week,
    tg.region_id AS region,
    coalesce(st.voice, 'all') AS voice,
    count(*) AS n,
    avg(st.tone) AS tone,
    CASE WHEN count(*) > 1 THEN avg(st.tone) - 1.96 * stddev_samp(st.tone) / sqrt(count(*)) END AS ci_low,
    CASE WHEN count(*) > 1 THEN avg(st.tone) + 1.96 * stddev_samp(st.tone) / sqrt(count(*)) END AS ci_high
FROM story_tone st JOIN tagged tg ON tg.document_id = st.document_id
GROUP BY GROUPING SETS ((st.week, tg.region_id, st.voice), (st.week, tg.region_id));

-- Volume per voice and week: stories (syndicated copies once, in the week of the first copy; equals
-- weekly_tone.n) and documents (every scored copy of those stories).
CREATE VIEW weekly_volume AS
WITH copies AS (
    SELECT voice, coalesce(story_id, document_id) AS story, count(*) AS documents
    FROM document_tone GROUP BY voice, coalesce(story_id, document_id)
)
SELECT
    st.week,
    st.voice,
    count(*) AS stories,
    sum(c.documents)::BIGINT AS documents,
    (sum(c.documents) - count(*))::BIGINT AS copies
FROM story_tone st JOIN copies c ON c.voice = st.voice AND c.story = coalesce(st.story_id, st.document_id)
GROUP BY st.week, st.voice;

-- Star ratings beside the model's tone, per source and week (App Store reviews, rated feedback forms).
CREATE VIEW weekly_rating AS
SELECT
    st.week,
    st.source_id,
    s.kind AS source_kind,
    count(*) AS n,
    avg(st.rating) AS mean_rating,
    avg(st.tone) AS tone
FROM story_tone st LEFT JOIN sources s ON s.id = st.source_id
WHERE st.rating IS NOT NULL
GROUP BY st.week, st.source_id, s.kind;
