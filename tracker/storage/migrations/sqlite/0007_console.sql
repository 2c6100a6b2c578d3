-- The console's people: users (email sealed, found by its blind index; Argon2id password
-- hashes; an optional TOTP secret, sealed), their server-side sessions (only a hash of
-- the cookie's token is kept) and the sign-in throttle (failures per account and per
-- keyed hash of the address, never the address itself).

CREATE TABLE console_users (
    id           TEXT    PRIMARY KEY,                -- random
    email_index  BLOB    NOT NULL UNIQUE,            -- HMAC of the normalised email
    email        BLOB    NOT NULL,                   -- sealed
    role         TEXT    NOT NULL CHECK (role IN ('admin', 'marketing', 'legal')),
    password     TEXT    NOT NULL,                   -- Argon2id, encoded with its parameters
    totp         BLOB,                               -- sealed TOTP secret; NULL: no 2FA
    language     TEXT    NOT NULL,                   -- ja, en
    time_zone    TEXT    NOT NULL,                   -- IANA name, e.g. Asia/Tokyo
    created_at   INTEGER NOT NULL,
    disabled_at  INTEGER
);

CREATE TABLE console_sessions (
    token_hash   BLOB    PRIMARY KEY,                -- SHA-256 of the cookie's token
    user_id      TEXT    NOT NULL REFERENCES console_users (id),
    created_at   INTEGER NOT NULL,                   -- absolute timeout counts from here
    seen_at      INTEGER NOT NULL,                   -- idle timeout counts from here
    confirmed_at INTEGER NOT NULL                    -- last password entry (re-authentication)
);
CREATE INDEX console_sessions_by_user ON console_sessions (user_id);

CREATE TABLE console_signin_failures (
    key          TEXT    PRIMARY KEY,                -- user:<id>, email:<index>, addr:<hmac>
    failures     INTEGER NOT NULL,
    since        INTEGER NOT NULL                    -- start of the counting window
);
