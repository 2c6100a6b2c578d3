-- The erasure ledger lives with the keys, apart from the data: restoring an older
-- backup of the data cannot bring back what it says was erased (the server re-applies
-- it at start). Entries hold pseudonymous references only.
CREATE TABLE erasure_ledger (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT    NOT NULL,
    lead_ids   TEXT    NOT NULL,                 -- JSON array of lead ids (random ids)
    vids       TEXT    NOT NULL,                 -- JSON array of visitor ids (random ids)
    key_ids    TEXT    NOT NULL,                 -- data keys destroyed
    at         INTEGER NOT NULL,
    done_at    INTEGER                           -- NULL: interrupted, finish at start
);
