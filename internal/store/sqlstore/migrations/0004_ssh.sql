-- SSH public keys of users. The fingerprint is the primary key: unique
-- across all users, since a certificate is issued for a key to the one user
-- who holds it.
CREATE TABLE ssh_keys (
    fingerprint TEXT {{bytewise}} NOT NULL,
    uid         TEXT {{bytewise}} NOT NULL REFERENCES users (uid) ON DELETE CASCADE,
    key_type    TEXT NOT NULL,
    bits        INTEGER NOT NULL,
    comment     TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT ssh_keys_pkey PRIMARY KEY (fingerprint)
);
CREATE INDEX ssh_keys_uid ON ssh_keys (uid, created_at);

-- Certificate authorities' key pairs, one per name (the SSH user CA, …).
-- They do not rotate on a schedule as token-signing keys do: sites are
-- configured to trust them.
CREATE TABLE authorities (
    name        TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    public_key  {{blob}} NOT NULL,
    private_key {{blob}} NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT authorities_pkey PRIMARY KEY (name)
);
