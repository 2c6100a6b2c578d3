-- The roll-ups are counted after the commit by a catch-up job (tracker/storage/tables/
-- rollups.py), no longer inside each ingest transaction: `tallied` is the highest
-- events.id counted. Until now every committed event was counted as it was written.
ALTER TABLE rollup_state ADD COLUMN tallied bigint NOT NULL DEFAULT 0;
UPDATE rollup_state SET tallied = COALESCE((SELECT MAX(id) FROM events), 0);
