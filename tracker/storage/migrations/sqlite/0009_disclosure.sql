-- What a consent management platform said, kept with the receipt it produced (proof):
-- tcf: cmp id and version, TCF policy version, vendor list version, the TC string;
-- gcm: the Consent Mode types' states. NULL for every other source.
ALTER TABLE consent_receipts ADD COLUMN signal TEXT;

-- The 外部送信 notice (電気通信事業法 27条の12): the recipients a site registers beside
-- ashiato itself, and the site's own entry (kind 'operator': who runs ashiato for the
-- site). A change ends a row (removed_at) and adds another, so every version of the
-- notice can be told from the rows; the changes are also in the audit log.
CREATE TABLE disclosure_recipients (
    id             TEXT    PRIMARY KEY,          -- random
    site_id        INTEGER NOT NULL REFERENCES sites (id),
    kind           TEXT    NOT NULL,             -- recipient, operator
    legal_name     TEXT    NOT NULL,
    service_name   TEXT    NOT NULL,
    items          TEXT    NOT NULL,             -- JSON array: privacy.disclosure.ITEMS keys
    purposes       TEXT    NOT NULL,             -- JSON array: privacy.disclosure.PURPOSES keys
    opt_out_url    TEXT,
    policy_version TEXT    NOT NULL,             -- the site's policy version when added
    added_at       INTEGER NOT NULL,
    removed_at     INTEGER
);
CREATE INDEX disclosure_recipients_by_site ON disclosure_recipients (site_id, added_at);
