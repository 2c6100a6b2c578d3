-- Which master key this key store belongs to, and which KEK is current.
-- primary_kek: new data keys are stored only when wrapped by it (a server that has not
--   re-read the key file after a rotation cannot wrap under a KEK about to be retired);
--   `ashiato keys rotate` moves it, `keys retire` refuses it. NULL until first set.
-- fingerprint: an HMAC under the master key's index and audit keys (never the keys):
--   a server started with another master key refuses to start. NULL until first set.
CREATE TABLE keyring_state (
    id          integer PRIMARY KEY CHECK (id = 1),
    primary_kek text,
    fingerprint bytea
);
INSERT INTO keyring_state (id) VALUES (1);

-- The head of the audit log (in the data database) as last seen: its seq and MAC.
-- Cutting rows off the end of the log leaves it pointing past the end (or at a row
-- with another MAC), which `ashiato audit verify` reports. Moved forward only.
CREATE TABLE audit_anchor (
    id  integer PRIMARY KEY CHECK (id = 1),
    seq bigint  NOT NULL DEFAULT 0,
    mac bytea   NOT NULL DEFAULT ''::bytea
);
INSERT INTO audit_anchor (id) VALUES (1);
