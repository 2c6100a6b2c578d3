-- Consent receipts and state; leads (personal data as ciphertext only), visitor links,
-- merges, the change feed, API keys, webhooks and their transactional outbox.

ALTER TABLE sites ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';  -- JSON
ALTER TABLE sites ADD COLUMN secret BLOB;        -- signed-identify secret, sealed

CREATE TABLE system_keys (        -- which data key seals system secrets (sites, webhooks)
    name   TEXT PRIMARY KEY,
    key_id TEXT NOT NULL
);

CREATE TABLE consent_receipts (
    id             TEXT    PRIMARY KEY,          -- the consent id: proof for the visitor
    site_id        INTEGER NOT NULL REFERENCES sites (id),
    vid            TEXT    NOT NULL,
    analytics      INTEGER,                      -- 1 granted, 0 refused, NULL not stated
    marketing      INTEGER,
    policy_version TEXT    NOT NULL,
    source         TEXT    NOT NULL,             -- banner, api, gpc, forget
    at             INTEGER NOT NULL
);
CREATE INDEX consent_receipts_by_visitor ON consent_receipts (vid, at);
CREATE INDEX consent_receipts_by_time ON consent_receipts (at);
CREATE TRIGGER consent_receipts_are_append_only BEFORE UPDATE ON consent_receipts
BEGIN
    SELECT RAISE(ABORT, 'consent receipts are append-only');
END;

CREATE TABLE consent_state (      -- the sum of a visitor's receipts on a site
    vid        TEXT    NOT NULL,
    site_id    INTEGER NOT NULL,
    analytics  INTEGER NOT NULL,
    marketing  INTEGER NOT NULL,
    gpc        INTEGER NOT NULL,
    receipt_id TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (vid, site_id)
) WITHOUT ROWID;

CREATE TABLE leads (
    id          TEXT    PRIMARY KEY,             -- random, never sequential
    email_index BLOB    NOT NULL UNIQUE,         -- keyed HMAC of the normalised email
    key_id      TEXT    NOT NULL,                -- the lead's data key (in the key store)
    email       BLOB    NOT NULL,                -- AEAD ciphertexts under that key
    name        BLOB,
    company     BLOB,
    phone       BLOB,
    fields      BLOB,
    first_touch TEXT,                            -- JSON: campaign, referrer, landing page
    last_touch  TEXT,
    merged_into TEXT    REFERENCES leads (id),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX leads_by_update ON leads (updated_at, id);
CREATE INDEX leads_by_merge ON leads (merged_into);

CREATE TABLE links (              -- visitor -> lead, with evidence and a time range
    id         INTEGER PRIMARY KEY,
    vid        TEXT    NOT NULL,
    lead_id    TEXT    NOT NULL REFERENCES leads (id),
    site_id    INTEGER NOT NULL REFERENCES sites (id),
    evidence   TEXT    NOT NULL CHECK (evidence IN ('form', 'signed', 'api')),
    began_at   INTEGER NOT NULL,                 -- when the visitor identified
    valid_from INTEGER NOT NULL,                 -- 0 for a visitor's first link: its past
    ended_at   INTEGER,                          -- the browser identified as someone else
    ip         BLOB                              -- full address then, sealed (lead's key)
);
CREATE INDEX links_by_visitor ON links (vid, valid_from);
CREATE INDEX links_by_lead ON links (lead_id);

CREATE TABLE merges (
    id          TEXT    PRIMARY KEY,
    into_lead   TEXT    NOT NULL REFERENCES leads (id),
    from_lead   TEXT    NOT NULL REFERENCES leads (id),
    actor       TEXT    NOT NULL,                -- API key id
    reason      TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    undone_at   INTEGER,
    undone_by   TEXT,
    undo_reason TEXT
);
CREATE INDEX merges_by_lead ON merges (into_lead);
CREATE INDEX merges_by_from ON merges (from_lead);

CREATE TABLE changes (            -- the change feed MA tools sync from
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    lead_id TEXT    NOT NULL,
    kind    TEXT    NOT NULL,                    -- created, updated, merged, unmerged, erased
    at      INTEGER NOT NULL
);
CREATE INDEX changes_by_lead ON changes (lead_id);

CREATE TABLE api_keys (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL,
    scopes       TEXT    NOT NULL,               -- JSON array
    secret_hash  BLOB    NOT NULL,               -- SHA-256 of a 256-bit random secret
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

CREATE TABLE webhooks (
    id          TEXT    PRIMARY KEY,
    url         TEXT    NOT NULL,
    events      TEXT    NOT NULL,                -- JSON array of event types
    secret      BLOB    NOT NULL,                -- signing secret, sealed
    created_at  INTEGER NOT NULL,
    disabled_at INTEGER
);

CREATE TABLE outbox (             -- written in the same transaction as what it reports
    id              TEXT    PRIMARY KEY,         -- the idempotency id receivers dedupe on
    webhook_id      TEXT    NOT NULL REFERENCES webhooks (id),
    type            TEXT    NOT NULL,
    lead_id         TEXT    NOT NULL,
    data            TEXT    NOT NULL,            -- JSON, no personal data (rendered at send)
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (delivered_at, next_attempt_at);
CREATE INDEX outbox_by_lead ON outbox (lead_id);
