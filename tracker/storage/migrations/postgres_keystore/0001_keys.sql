-- Wrapped per-lead data keys. `wrapped` is the data key sealed by the KEK `kek_id`
-- (see privacy/crypto.py); no key is ever stored in the clear.
-- A deleted row lingers as a dead tuple until VACUUM: autovacuum is told to clean this
-- small table after any change rather than after 20% of it (the default).
CREATE TABLE data_keys (
    id         text   COLLATE "C" PRIMARY KEY,   -- 16 lowercase hex, also the key id in ciphertexts
    kek_id     text   NOT NULL,                  -- which key-encryption key wraps it
    wrapped    bytea  NOT NULL,
    created_at bigint NOT NULL                   -- ms since the epoch
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 0);

-- A rotation asks "which keys are not wrapped by the new KEK yet", status counts per KEK.
CREATE INDEX data_keys_kek_id ON data_keys (kek_id);
