-- API tokens for automation. A token is "trls_<id>_<secret>": id is the
-- lookup key, and only SHA-256 of the secret is kept, so the table lets no
-- one use a token. Names are unique per user, revoked tokens included, so
-- that a name in the audit record means one token.
CREATE TABLE api_tokens (
    id           TEXT {{bytewise}} NOT NULL,
    uid          TEXT {{bytewise}} NOT NULL REFERENCES users (uid) ON DELETE CASCADE,
    name         TEXT {{bytewise}} NOT NULL,
    scopes       TEXT NOT NULL,
    secret_hash  {{blob}} NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL DEFAULT 0,
    revoked_at   BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT api_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT api_tokens_uid_name_key UNIQUE (uid, name)
);
