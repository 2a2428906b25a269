-- Actor assertions (RFC 7523 JWTs a registered service signs) already used
-- for a token exchange, by the service's name and the assertion's jti, kept
-- until the assertion expires: a replayed assertion is refused.
CREATE TABLE used_assertions (
    service    TEXT {{bytewise}} NOT NULL,
    jti        TEXT {{bytewise}} NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT used_assertions_pkey PRIMARY KEY (service, jti)
);
CREATE INDEX used_assertions_expires_at ON used_assertions (expires_at);
