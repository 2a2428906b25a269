-- The readiness probe (Store.Probe) writes a row here and deletes it in the
-- same committed transaction: a store that answers but cannot commit (a full
-- disk, a read-only replica) is not ready.
CREATE TABLE store_probe (
    id     INTEGER NOT NULL,
    filler {{blob}} NOT NULL,
    CONSTRAINT store_probe_pkey PRIMARY KEY (id)
);
