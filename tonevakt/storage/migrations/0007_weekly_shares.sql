-- 0007: weekly shares corrected for the model's known errors, and the human-label loop (issue 15).
-- A bootstrap cannot live in SQL: the pass fills share_estimates in Python (tonevakt/nlp/shares.py) after
-- scoring and before each report; weekly_shares shows the active model's rows. Described in docs/schema.md.

-- How a model labels documents whose true label is known (in-domain, from the model's own metadata).
CREATE TABLE model_confusion (
    model           VARCHAR NOT NULL,
    true_label      VARCHAR NOT NULL,
    predicted_label VARCHAR NOT NULL,
    documents       INTEGER NOT NULL,
    source          VARCHAR,
    recorded_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (model, true_label, predicted_label)
);

CREATE TABLE share_estimates (
    week                   VARCHAR NOT NULL,
    voice                  VARCHAR NOT NULL,
    model                  VARCHAR NOT NULL,
    n                      INTEGER NOT NULL,
    human_n                INTEGER NOT NULL,
    share_negative         DOUBLE NOT NULL,
    share_negative_ci_low  DOUBLE NOT NULL,
    share_negative_ci_high DOUBLE NOT NULL,
    share_neutral          DOUBLE NOT NULL,
    share_neutral_ci_low   DOUBLE NOT NULL,
    share_neutral_ci_high  DOUBLE NOT NULL,
    share_positive         DOUBLE NOT NULL,
    share_positive_ci_low  DOUBLE NOT NULL,
    share_positive_ci_high DOUBLE NOT NULL,
    tone                   DOUBLE NOT NULL,
    tone_ci_low            DOUBLE NOT NULL,
    tone_ci_high           DOUBLE NOT NULL,
    counted_negative       DOUBLE NOT NULL,
    counted_positive       DOUBLE NOT NULL,
    labelled_n             INTEGER NOT NULL,
    corrected              BOOLEAN NOT NULL,
    misfit                 BOOLEAN NOT NULL,
    inputs_key             VARCHAR NOT NULL,
    computed_at            TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (week, voice, model)
);

CREATE VIEW weekly_shares AS
SELECT week, voice, n, human_n,
       share_negative, share_negative_ci_low, share_negative_ci_high,
       share_neutral, share_neutral_ci_low, share_neutral_ci_high,
       share_positive, share_positive_ci_low, share_positive_ci_high,
       tone, tone_ci_low, tone_ci_high, counted_negative, counted_positive,
       labelled_n, corrected, misfit, model, computed_at
FROM share_estimates
WHERE model = (SELECT id FROM models WHERE active LIMIT 1);

-- Every human label as it was given, so that a label can be undone (the previous one comes back).
CREATE SEQUENCE label_history_id START 1;
CREATE TABLE label_history (
    id                   BIGINT PRIMARY KEY DEFAULT nextval('label_history_id'),
    document_id          VARCHAR NOT NULL,
    label                VARCHAR NOT NULL,
    labelled_by          VARCHAR,
    labelled_at          TIMESTAMPTZ NOT NULL,
    previous_label       VARCHAR,
    previous_labelled_by VARCHAR,
    previous_note        VARCHAR,
    previous_labelled_at TIMESTAMPTZ,
    undone_at            TIMESTAMPTZ
);

-- Human labels per ISO week of labelling (Europe/Oslo) and how often the active model agreed with them.
CREATE VIEW weekly_labels AS
SELECT
    strftime(timezone('Europe/Oslo', l.labelled_at), '%G-W%V') AS week,
    count(*) AS labelled,
    count(s.document_id) AS compared,
    count(*) FILTER (WHERE s.label = l.label) AS agreed,
    CASE WHEN count(s.document_id) > 0
         THEN (count(*) FILTER (WHERE s.label = l.label))::DOUBLE / count(s.document_id) END AS agreement
FROM labels l
LEFT JOIN scores s ON s.document_id = l.document_id AND s.model = (SELECT id FROM models WHERE active LIMIT 1)
GROUP BY 1;
