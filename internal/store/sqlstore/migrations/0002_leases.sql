-- Leases make background work exclusive across replicas: whoever holds the
-- named lease (until expires_at) does the work; the others wait.
CREATE TABLE leases (
    name       TEXT NOT NULL,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT leases_pkey PRIMARY KEY (name)
);

-- The janitor prunes the change feed by age.
CREATE INDEX changes_at ON changes (at);
