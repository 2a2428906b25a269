-- The oidc authentication backend: identities at an external identity
-- provider linked to accounts, and logins through it in progress.
CREATE TABLE identity_links (
    issuer     TEXT {{bytewise}} NOT NULL,
    subject    TEXT {{bytewise}} NOT NULL,
    uid        TEXT {{bytewise}} NOT NULL REFERENCES users (uid) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT identity_links_pkey PRIMARY KEY (issuer, subject)
);
CREATE INDEX identity_links_uid ON identity_links (uid, created_at);

-- state_hash and poll_hash are SHA-256 of the OAuth state and of the
-- starting client's secret; link_hash of the first-use link form's token;
-- finish_hash of the code the browser hands back to the starting client
-- (through return_to, a loopback address of the client's, or the user's
-- copy), without which the login cannot be collected.
CREATE TABLE external_logins (
    id         TEXT NOT NULL,
    state_hash {{blob}} NOT NULL,
    poll_hash  {{blob}} NOT NULL,
    nonce      TEXT NOT NULL,
    verifier   TEXT NOT NULL,
    link_uid   TEXT {{bytewise}} REFERENCES users (uid) ON DELETE CASCADE,
    issuer     TEXT NOT NULL DEFAULT '',
    subject    TEXT NOT NULL DEFAULT '',
    email      TEXT NOT NULL DEFAULT '',
    link_hash  {{blob}},
    return_to  TEXT NOT NULL DEFAULT '',
    finish_hash {{blob}},
    uid        TEXT {{bytewise}} REFERENCES users (uid) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT external_logins_pkey PRIMARY KEY (id)
);
CREATE UNIQUE INDEX external_logins_state_hash ON external_logins (state_hash);
CREATE INDEX external_logins_expires_at ON external_logins (expires_at);
