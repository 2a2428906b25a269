-- Sites (providers). A site proves itself with its Ed25519 key (public_key,
-- 32 bytes, empty until it registered with its one-time token).
CREATE TABLE providers (
    name          TEXT {{bytewise}} NOT NULL,
    url           TEXT NOT NULL,
    state         TEXT NOT NULL,
    public_key    {{blob}} NOT NULL,
    registered_at BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    CONSTRAINT providers_pkey PRIMARY KEY (name)
);

-- One-time registration tokens, by SHA-256 of the token.
CREATE TABLE provider_registrations (
    token_hash {{blob}} NOT NULL,
    provider   TEXT {{bytewise}} NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    CONSTRAINT provider_registrations_pkey PRIMARY KEY (token_hash)
);

-- Connection tickets issued, by jti; used_at is set when the site reports
-- the connection the ticket made (0 until then), so a ticket makes one.
CREATE TABLE provider_tickets (
    id         TEXT {{bytewise}} NOT NULL,
    provider   TEXT {{bytewise}} NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    uid        TEXT {{bytewise}} NOT NULL REFERENCES users (uid) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT NOT NULL,
    CONSTRAINT provider_tickets_pkey PRIMARY KEY (id)
);
CREATE INDEX provider_tickets_expires_at ON provider_tickets (expires_at);

-- Users' mappings to local accounts at sites, as the sites reported them.
CREATE TABLE provider_connections (
    provider             TEXT {{bytewise}} NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    uid                  TEXT {{bytewise}} NOT NULL REFERENCES users (uid) ON DELETE CASCADE,
    local_account        TEXT NOT NULL,
    user_key_fingerprint TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    CONSTRAINT provider_connections_pkey PRIMARY KEY (provider, uid)
);
CREATE INDEX provider_connections_uid ON provider_connections (uid, provider);
