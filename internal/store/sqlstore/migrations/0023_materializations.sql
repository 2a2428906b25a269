-- Materializations: where a realization's environment stands at the sites
-- that run its resources, as they report it. A realization none of whose
-- resources belongs to a registered site has no row here.
CREATE TABLE materializations (
    realization   TEXT {{bytewise}} NOT NULL REFERENCES realizations (id) ON DELETE CASCADE,
    state         TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    generation    BIGINT NOT NULL DEFAULT 0,
    -- When the centre began waiting for a site to answer; 0 when it waits
    -- for none. Past the silence limit the resources are marked suspect.
    waiting_since BIGINT NOT NULL DEFAULT 0,
    suspect       BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at    BIGINT NOT NULL,
    CONSTRAINT materializations_pkey PRIMARY KEY (realization)
);
CREATE INDEX materializations_waiting ON materializations (waiting_since) WHERE waiting_since > 0;

-- Each node's and link's state and address, per site.
CREATE TABLE materialization_elements (
    realization TEXT {{bytewise}} NOT NULL REFERENCES materializations (realization) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    name        TEXT {{bytewise}} NOT NULL,
    provider    TEXT {{bytewise}} NOT NULL,
    state       TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    address     TEXT NOT NULL DEFAULT '',
    updated_at  BIGINT NOT NULL,
    CONSTRAINT materialization_elements_pkey PRIMARY KEY (realization, kind, name)
);
