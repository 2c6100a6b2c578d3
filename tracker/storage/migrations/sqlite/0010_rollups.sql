-- Roll-ups for the dashboard (tracker/storage/tables/rollups.py): page views and
-- sessions per site, dimension, UTC hour and value; who viewed a page in each hour, with
-- their previous such hour (the distinct visitors of any span of hours are its rows whose
-- previous hour is before it); and how far they cover the events (`watermark` NULL: every
-- visitor; otherwise visitors up to that id, until a rebuild finishes). On a database that already has events they start empty and
-- uncovered: `ashiato reports rebuild` counts the events once.
CREATE TABLE rollup_counts (
    site_id   INTEGER NOT NULL,
    dim       TEXT    NOT NULL,                -- '', page, entry, referrer, source, …
    hour      INTEGER NOT NULL,                -- ms since the epoch / 3,600,000 (UTC)
    value     TEXT    NOT NULL,
    pageviews INTEGER NOT NULL,
    sessions  INTEGER NOT NULL,
    PRIMARY KEY (site_id, dim, hour, value)
) WITHOUT ROWID;

CREATE TABLE rollup_visitors (
    site_id   INTEGER NOT NULL,
    hour      INTEGER NOT NULL,
    vid       TEXT    NOT NULL,
    prev_hour INTEGER NOT NULL,                -- the visitor's previous such hour, or -1
    PRIMARY KEY (site_id, hour, vid)
) WITHOUT ROWID;

CREATE TABLE rollup_state (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    watermark TEXT
);
INSERT INTO rollup_state (id, watermark)
    SELECT 1, CASE WHEN EXISTS (SELECT 1 FROM events) THEN '' ELSE NULL END;

-- When leads turned hot (the scorer's upward crossings), for the dashboard; erased with
-- the lead.
CREATE TABLE hot_crossings (
    lead_id TEXT    NOT NULL REFERENCES leads (id),
    site_id INTEGER NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX hot_crossings_by_site ON hot_crossings (site_id, at);
CREATE INDEX hot_crossings_by_lead ON hot_crossings (lead_id);
-- New leads per day and their campaigns: read from the index alone; which site a lead
-- is on: from the links' index alone.
CREATE INDEX leads_by_creation ON leads (created_at, merged_into, id, first_touch, last_touch);
CREATE INDEX links_by_lead_site ON links (lead_id, site_id);

-- Page views that carry UTM values (a session's landing), by site and time: a dashboard
-- filtered by source, medium or campaign starts from these. Untagged events add nothing.
CREATE INDEX events_tagged ON events (site_id, at)
    WHERE utm_source IS NOT NULL OR utm_medium IS NOT NULL OR utm_campaign IS NOT NULL;
