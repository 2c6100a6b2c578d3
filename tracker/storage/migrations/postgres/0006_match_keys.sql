-- 名寄せ (identity resolution): each lead's match keys — keyed HMACs (blind indexes) of
-- its normalised email, phone, name, reading, company and email domain, never the values
-- — and the pairs people marked "not the same". Both go with the lead on erasure.

CREATE TABLE match_keys (
    lead_id text   COLLATE "C" NOT NULL REFERENCES leads (id),
    kind    text   COLLATE "C" NOT NULL,         -- email, phone, name, kana, company, domain
    value   bytea  NOT NULL,                     -- HMAC of the normalised value
    version bigint NOT NULL,                     -- the normalisers' version (identity.matchkeys)
    PRIMARY KEY (lead_id, kind, value)
);
CREATE INDEX match_keys_by_value ON match_keys (kind, value);

CREATE TABLE duplicate_dismissals (
    lead_a text   COLLATE "C" NOT NULL REFERENCES leads (id),   -- the pair, smaller id first
    lead_b text   COLLATE "C" NOT NULL REFERENCES leads (id),
    actor  text   NOT NULL,                                     -- apikey:<id> or cli
    at     bigint NOT NULL,
    PRIMARY KEY (lead_a, lead_b),
    CHECK (lead_a < lead_b)
);
CREATE INDEX duplicate_dismissals_by_b ON duplicate_dismissals (lead_b);
