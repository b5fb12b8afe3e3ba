-- 0009: which data set a model's dev macro-F1 was measured on. The tone model's figure is on the labelled texts
-- about Helseplattformen (helseplattformen_tone dev), the NoReC models' on NoReC_sentence dev: the report must
-- name the right one. NULL for a model registered before this column (filled when it registers again).

ALTER TABLE models ADD COLUMN dev_set VARCHAR;
