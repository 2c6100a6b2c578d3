-- Data-subject requests, the tamper-evident audit log, and the marker of how far the
-- erasure ledger (kept in the key store, apart from this database) has been applied.

CREATE TABLE privacy_requests (
    id           text   COLLATE "C" PRIMARY KEY,
    kind         text   NOT NULL CHECK (kind IN ('export', 'erase')),
    status       text   NOT NULL,                -- received, completed, failed
    subject      text   COLLATE "C" NOT NULL,    -- pseudonymous: lead id or visitor id
    received_at  bigint NOT NULL,
    due_at       bigint NOT NULL,                -- one calendar month after receipt
    completed_at bigint,
    export_path  text,                           -- an export written to the export dir
    detail       json                            -- counts, never personal data
);
CREATE INDEX privacy_requests_by_subject ON privacy_requests (subject);

CREATE TABLE audit_log (
    seq     bigint PRIMARY KEY,                  -- assigned under a lock: commit order
    at      bigint NOT NULL,
    actor   text   NOT NULL,                     -- api key id, cli, system
    action  text   NOT NULL,
    subject text   NOT NULL,                     -- ids only
    detail  json   NOT NULL,                     -- ids and counts only
    mac     bytea  NOT NULL                      -- HMAC(audit key, previous mac, this row)
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION ashiato_refuse_change('the audit log is append-only');
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION ashiato_refuse_change('the audit log is append-only');
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION ashiato_refuse_change('the audit log is append-only');

CREATE TABLE erasure_marker (                    -- one row: ledger entries applied here
    id      integer PRIMARY KEY CHECK (id = 1),
    applied bigint  NOT NULL
);
INSERT INTO erasure_marker VALUES (1, 0);
