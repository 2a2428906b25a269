-- Work for sites (providers), kept until the site acknowledges it. Written
-- in the transaction of the operation that causes it; a dispatcher on the
-- centre posts each to its site, in seq order per site, with a short-lived
-- token it signs then (no secret is stored here). provider is not a
-- foreign key: a removed site's pending deliveries stay, failed, for the
-- record.
CREATE TABLE deliveries (
    seq          {{autoid}},
    id           TEXT {{bytewise}} NOT NULL,
    provider     TEXT {{bytewise}} NOT NULL,
    kind         TEXT NOT NULL,
    idem_key     TEXT {{bytewise}} NOT NULL,
    payload      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt BIGINT NOT NULL DEFAULT 0,
    lease_until  BIGINT NOT NULL DEFAULT 0,
    delivered_at BIGINT NOT NULL DEFAULT 0,
    failed_at    BIGINT NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    CONSTRAINT deliveries_id UNIQUE (id),
    CONSTRAINT deliveries_key UNIQUE (provider, idem_key)
);
CREATE INDEX deliveries_pending ON deliveries (provider, seq) WHERE delivered_at = 0 AND failed_at = 0;
