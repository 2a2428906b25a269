-- The OpenID Connect provider: registered clients, authorization requests
-- between the client's redirect and the code's redemption, and the access
-- tokens issued to clients. Lists (redirect URIs, scopes) are kept as
-- space-separated text: neither may contain spaces.
CREATE TABLE oidc_clients (
    id            TEXT {{bytewise}} NOT NULL,
    secret_hash   {{blob}} NOT NULL,
    redirect_uris TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    CONSTRAINT oidc_clients_pkey PRIMARY KEY (id)
);

-- uid is set when the user has logged in; code_hash (SHA-256 of the code)
-- while a code is issued and not yet redeemed.
CREATE TABLE oidc_auth_requests (
    id                    TEXT NOT NULL,
    client_id             TEXT {{bytewise}} NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    redirect_uri          TEXT NOT NULL,
    scopes                TEXT NOT NULL,
    state                 TEXT NOT NULL,
    nonce                 TEXT NOT NULL,
    response_type         TEXT NOT NULL,
    response_mode         TEXT NOT NULL,
    code_challenge        TEXT NOT NULL,
    code_challenge_method TEXT NOT NULL,
    uid                   TEXT {{bytewise}} REFERENCES users (uid) ON DELETE CASCADE,
    auth_time             BIGINT NOT NULL,
    code_hash             {{blob}},
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    CONSTRAINT oidc_auth_requests_pkey PRIMARY KEY (id)
);
CREATE UNIQUE INDEX oidc_auth_requests_code_hash ON oidc_auth_requests (code_hash);
CREATE INDEX oidc_auth_requests_expires_at ON oidc_auth_requests (expires_at);

CREATE TABLE oidc_tokens (
    id         TEXT NOT NULL,
    client_id  TEXT {{bytewise}} NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    uid        TEXT {{bytewise}} NOT NULL REFERENCES users (uid) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT oidc_tokens_pkey PRIMARY KEY (id)
);
CREATE INDEX oidc_tokens_uid ON oidc_tokens (uid, client_id);
CREATE INDEX oidc_tokens_expires_at ON oidc_tokens (expires_at);
