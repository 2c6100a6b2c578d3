-- Sites and the raw event log.
CREATE TABLE sites (
    id           INTEGER PRIMARY KEY,
    key          TEXT    NOT NULL UNIQUE,
    name         TEXT    NOT NULL UNIQUE,
    origins      TEXT    NOT NULL,          -- JSON array of "scheme://host[:port]"
    consent_mode TEXT    NOT NULL CHECK (consent_mode IN ('opt-in', 'notice')),
    created_at   INTEGER NOT NULL
);

CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
    site_id         INTEGER NOT NULL REFERENCES sites (id),
    type            TEXT    NOT NULL,
    vid             TEXT    NOT NULL,
    sid             TEXT,
    at              INTEGER NOT NULL,       -- server time, ms since the epoch
    url             TEXT,
    referrer        TEXT,
    title           TEXT,
    name            TEXT,
    props           TEXT,                   -- JSON object
    utm_source      TEXT,
    utm_medium      TEXT,
    utm_campaign    TEXT,
    utm_term        TEXT,
    utm_content     TEXT,
    click_ids       TEXT,                   -- JSON object, e.g. {"gclid": "..."}
    browser         TEXT,
    browser_version TEXT,
    os              TEXT,
    os_version      TEXT,
    device          TEXT,
    ip              TEXT                    -- truncated: IPv4 /24, IPv6 /48
);

CREATE INDEX events_by_visitor ON events (vid, at);
CREATE INDEX events_by_time ON events (at);
