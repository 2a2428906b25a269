-- Services registered to act for users (token exchange). A service proves
-- itself with its Ed25519 key (public_key, 32 bytes) or with a client secret
-- of which only SHA-256 is kept (secret_hash); the other column is empty.
CREATE TABLE services (
    name        TEXT {{bytewise}} NOT NULL,
    public_key  {{blob}} NOT NULL,
    secret_hash {{blob}} NOT NULL,
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT services_pkey PRIMARY KEY (name)
);
