-- What unsigned identifications (forms) claimed about known leads: kept as records, never
-- written over the lead. The claim is ciphertext under the lead's data key; the rows go
-- with the lead on erasure.

CREATE TABLE submissions (
    id      text   COLLATE "C" PRIMARY KEY,      -- random
    lead_id text   COLLATE "C" NOT NULL REFERENCES leads (id),
    vid     text   COLLATE "C" NOT NULL,
    site_id bigint NOT NULL REFERENCES sites (id),
    form    text,                                -- the form's id, as the tag sent it
    at      bigint NOT NULL,                     -- the identify event's time
    claim   bytea  NOT NULL                      -- sealed JSON: traits sent, traits filled
);
CREATE INDEX submissions_by_lead ON submissions (lead_id, at);
