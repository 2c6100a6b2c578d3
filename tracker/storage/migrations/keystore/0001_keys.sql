-- Wrapped per-lead data keys. `wrapped` is the data key sealed by the KEK `kek_id`
-- (see privacy/crypto.py); no key is ever stored in the clear.
CREATE TABLE data_keys (
    id         TEXT    PRIMARY KEY,     -- 16 lowercase hex, also the key id in ciphertexts
    kek_id     TEXT    NOT NULL,        -- which key-encryption key wraps it
    wrapped    BLOB    NOT NULL,
    created_at INTEGER NOT NULL         -- ms since the epoch
);

-- A rotation asks "which keys are not wrapped by the new KEK yet", status counts per KEK.
CREATE INDEX data_keys_kek_id ON data_keys (kek_id);
