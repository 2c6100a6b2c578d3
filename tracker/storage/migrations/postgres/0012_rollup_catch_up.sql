-- The roll-ups are counted after the commit by a catch-up job (tracker/storage/tables/
-- catchup.py), no longer inside each ingest transaction: `tallied` is the highest
-- events.id counted, `deletes` how many deletes of events there were (a step counted
-- before one is counted again). Roll-ups that covered every visitor (watermark NULL)
-- cover every event so far; others (a database that had events before 0010, or a
-- rebuild under way) start again from the first event, which the job counts by itself.
ALTER TABLE rollup_state ADD COLUMN tallied bigint NOT NULL DEFAULT 0;
ALTER TABLE rollup_state ADD COLUMN deletes bigint NOT NULL DEFAULT 0;
DELETE FROM rollup_counts WHERE (SELECT watermark FROM rollup_state) IS NOT NULL;
DELETE FROM rollup_visitors WHERE (SELECT watermark FROM rollup_state) IS NOT NULL;
UPDATE rollup_state SET watermark = NULL, tallied = CASE WHEN watermark IS NULL
    THEN COALESCE((SELECT MAX(id) FROM events), 0) ELSE 0 END;
