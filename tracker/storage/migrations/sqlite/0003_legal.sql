-- Data-subject requests, the tamper-evident audit log, and the marker of how far the
-- erasure ledger (kept in the key store, apart from this database) has been applied.

CREATE TABLE privacy_requests (
    id           TEXT    PRIMARY KEY,
    kind         TEXT    NOT NULL CHECK (kind IN ('export', 'erase')),
    status       TEXT    NOT NULL,               -- received, completed, failed
    subject      TEXT    NOT NULL,               -- pseudonymous: lead id or visitor id
    received_at  INTEGER NOT NULL,
    due_at       INTEGER NOT NULL,               -- one calendar month after receipt
    completed_at INTEGER,
    export_path  TEXT,                           -- an export written to the export dir
    detail       TEXT                            -- JSON: counts, never personal data
);
CREATE INDEX privacy_requests_by_subject ON privacy_requests (subject);

CREATE TABLE audit_log (
    seq     INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,                    -- api key id, cli, system
    action  TEXT    NOT NULL,
    subject TEXT    NOT NULL,                    -- ids only
    detail  TEXT    NOT NULL,                    -- JSON, ids and counts only
    mac     BLOB    NOT NULL                     -- HMAC(audit key, previous mac, this row)
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TABLE erasure_marker (                    -- one row: ledger entries applied here
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    applied INTEGER NOT NULL
);
INSERT INTO erasure_marker VALUES (1, 0);
