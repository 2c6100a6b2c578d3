-- The console's people: users (email sealed, found by its blind index; Argon2id password
-- hashes; an optional TOTP secret, sealed), their server-side sessions (only a hash of
-- the cookie's token is kept) and the sign-in throttle (failures per account and per
-- keyed hash of the address, never the address itself).

CREATE TABLE console_users (
    id           text   COLLATE "C" PRIMARY KEY,     -- random
    email_index  bytea  NOT NULL UNIQUE,             -- HMAC of the normalised email
    email        bytea  NOT NULL,                    -- sealed
    role         text   NOT NULL CHECK (role IN ('admin', 'marketing', 'legal')),
    password     text   NOT NULL,                    -- Argon2id, encoded with its parameters
    totp         bytea,                              -- sealed TOTP secret; NULL: no 2FA
    language     text   NOT NULL,                    -- ja, en
    time_zone    text   NOT NULL,                    -- IANA name, e.g. Asia/Tokyo
    created_at   bigint NOT NULL,
    disabled_at  bigint
);

CREATE TABLE console_sessions (
    token_hash   bytea  PRIMARY KEY,                 -- SHA-256 of the cookie's token
    user_id      text   COLLATE "C" NOT NULL REFERENCES console_users (id),
    created_at   bigint NOT NULL,                    -- absolute timeout counts from here
    seen_at      bigint NOT NULL,                    -- idle timeout counts from here
    confirmed_at bigint NOT NULL                     -- last password entry (re-authentication)
);
CREATE INDEX console_sessions_by_user ON console_sessions (user_id);

CREATE TABLE console_signin_failures (
    key          text   COLLATE "C" PRIMARY KEY,     -- user:<id>, email:<index>, addr:<hmac>
    failures     bigint NOT NULL,
    since        bigint NOT NULL                     -- start of the counting window
);
