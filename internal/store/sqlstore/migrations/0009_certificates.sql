-- X.509 client certificates bound to login sessions: a request over mutual
-- TLS with a bound certificate acts as the session's user until the binding
-- expires or the session ends (logout revokes it). A certificate is named by
-- the SHA-256 of its DER; a later login made with it rebinds it.
CREATE TABLE cert_bindings (
    fingerprint TEXT {{bytewise}} NOT NULL,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    CONSTRAINT cert_bindings_pkey PRIMARY KEY (fingerprint)
);
CREATE INDEX cert_bindings_session_id ON cert_bindings (session_id);
