-- What unsigned identifications (forms) claimed about known leads: kept as records, never
-- written over the lead. The claim is ciphertext under the lead's data key; the rows go
-- with the lead on erasure.

CREATE TABLE submissions (
    id      TEXT    PRIMARY KEY,                 -- random
    lead_id TEXT    NOT NULL REFERENCES leads (id),
    vid     TEXT    NOT NULL,
    site_id INTEGER NOT NULL REFERENCES sites (id),
    form    TEXT,                                -- the form's id, as the tag sent it
    at      INTEGER NOT NULL,                    -- the identify event's time
    claim   BLOB    NOT NULL                     -- sealed JSON: traits sent, traits filled
);
CREATE INDEX submissions_by_lead ON submissions (lead_id, at);
