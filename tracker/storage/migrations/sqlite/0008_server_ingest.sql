-- Server-side ingestion (the Segment HTTP Tracking API, tracker/segment.py).
-- A site's write key, kept only as its SHA-256 (the key is shown once, rotatable).
CREATE TABLE site_write_keys (
    site_id    INTEGER PRIMARY KEY REFERENCES sites (id),
    key_hash   BLOB    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- The messageIds a site's senders used (BLAKE2b-128 of each), so that a message sent
-- again (an SDK retrying after a lost answer) is stored once. Kept for a while only.
CREATE TABLE seen_messages (
    site_id    INTEGER NOT NULL REFERENCES sites (id),
    message_id BLOB    NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (site_id, message_id)
);
CREATE INDEX seen_messages_by_time ON seen_messages (at);
