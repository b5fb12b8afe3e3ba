-- 0010: near-copy grouping reads stored signatures instead of re-reading and re-signing every text of the last
-- 14 days in every pass (at 10M documents a pass read ~333,000 texts: 50 s and 2.7 GB). Each document of the
-- grouping window gets its MinHash signature once, when stored (`storage/story_index.py`); its 32 LSH band keys
-- sit in `story_bands`, so a pass asks SQL for the stored documents that share a bucket with a new one. Rows
-- older than the window are pruned; documents stored before this migration are signed on the next pass.

CREATE TABLE story_signatures (
    document_id  VARCHAR NOT NULL,
    story_id     VARCHAR NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    seq          BIGINT NOT NULL,        -- stored order, earliest first (a member founds a story before later ones)
    signature    BLOB                    -- 128 little-endian uint32; NULL: too short to group
);

CREATE TABLE story_bands (
    band   UTINYINT NOT NULL,
    bucket BIGINT NOT NULL,
    seq    BIGINT NOT NULL        -- the signature's row (story_signatures.seq)
);
