-- Lead scoring: each version of a site's rules, the append-only points ledger, and per
-- lead and site the rules version its entries are under, whether `lead.hot` is armed,
-- and the score when last computed (for lists; decay is applied when read).

CREATE TABLE scoring_rules (
    site_id    INTEGER NOT NULL,
    version    INTEGER NOT NULL,                 -- 1, 2, … per site
    document   TEXT    NOT NULL,                 -- JSON: the rules document
    actor      TEXT    NOT NULL,                 -- api key id, cli
    created_at INTEGER NOT NULL,
    PRIMARY KEY (site_id, version)
);

CREATE TABLE score_ledger (
    seq         INTEGER PRIMARY KEY,
    lead_id     TEXT    NOT NULL REFERENCES leads (id),
    site_id     INTEGER NOT NULL,
    version     INTEGER NOT NULL,                -- the rules version; 0 for manual entries
    rule        TEXT    NOT NULL,                -- the rule's id, or 'manual'
    axis        TEXT    NOT NULL CHECK (axis IN ('engagement', 'fit')),
    kind        TEXT    NOT NULL CHECK (kind IN ('event', 'profile', 'manual')),
    source      TEXT    NOT NULL,                -- event:<id>, trait:<name>#n, manual:<id>
    object      TEXT,                            -- the page or asset (once_per_object)
    points      INTEGER NOT NULL,
    at          INTEGER NOT NULL,                -- when earned: decay counts from here
    reason      TEXT    NOT NULL,                -- in words, no personal data
    actor       TEXT,                            -- who, for manual entries
    recorded_at INTEGER NOT NULL,
    UNIQUE (lead_id, site_id, version, rule, source)
);
CREATE TRIGGER score_ledger_is_append_only BEFORE UPDATE ON score_ledger
BEGIN
    SELECT RAISE(ABORT, 'the points ledger is append-only');
END;

CREATE TABLE lead_scores (
    lead_id TEXT    NOT NULL REFERENCES leads (id),
    site_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    armed   INTEGER NOT NULL,                    -- 1: the next upward crossing sends lead.hot
    score   REAL    NOT NULL,                    -- engagement (with its merged leads) at `at`
    fit     INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (lead_id, site_id)
) WITHOUT ROWID;
CREATE INDEX lead_scores_by_score ON lead_scores (site_id, score);

CREATE TABLE scoring_feed (                      -- how far the scorer has read the change feed
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT  NOT NULL
);
INSERT INTO scoring_feed VALUES (1, 0);
