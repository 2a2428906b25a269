-- Experiments, libraries, grants, the resource inventory and realizations.
--
-- Owners (experiments, libraries), projects and owners of realizations, and
-- the circles and objects of grants are plain strings without foreign keys:
-- an owner is a uid or a project, and the service removes what belongs to
-- an owner with it (as circles.owner in 0003). Realizations have no foreign
-- key at all except through their bindings: their record outlives the
-- experiment, the project and the user.

CREATE TABLE experiments (
    id         TEXT {{bytewise}} NOT NULL,
    owner      TEXT {{bytewise}} NOT NULL,
    name       TEXT {{bytewise}} NOT NULL,
    creator    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT experiments_pkey PRIMARY KEY (id)
);
CREATE INDEX experiments_owner ON experiments (owner, id);

-- An aspect's revision counts its changes from 1; PutAspect compares it to
-- the revision the change was based on. size is the content's length, so
-- listings without content can still say how large an aspect is.
CREATE TABLE aspects (
    experiment TEXT {{bytewise}} NOT NULL,
    type       TEXT {{bytewise}} NOT NULL,
    name       TEXT {{bytewise}} NOT NULL,
    revision   BIGINT NOT NULL,
    content    {{blob}} NOT NULL,
    size       BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT aspects_pkey PRIMARY KEY (experiment, type, name),
    CONSTRAINT aspects_experiment_fkey FOREIGN KEY (experiment) REFERENCES experiments (id) ON DELETE CASCADE
);

CREATE TABLE libraries (
    id         TEXT {{bytewise}} NOT NULL,
    owner      TEXT {{bytewise}} NOT NULL,
    name       TEXT {{bytewise}} NOT NULL,
    creator    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT libraries_pkey PRIMARY KEY (id)
);
CREATE INDEX libraries_owner ON libraries (owner, id);

CREATE TABLE library_experiments (
    library    TEXT {{bytewise}} NOT NULL,
    experiment TEXT {{bytewise}} NOT NULL,
    CONSTRAINT library_experiments_pkey PRIMARY KEY (library, experiment),
    CONSTRAINT library_experiments_library_fkey FOREIGN KEY (library) REFERENCES libraries (id) ON DELETE CASCADE,
    CONSTRAINT library_experiments_experiment_fkey FOREIGN KEY (experiment) REFERENCES experiments (id) ON DELETE CASCADE
);
-- Serves the cascade when an experiment is deleted.
CREATE INDEX library_experiments_experiment ON library_experiments (experiment);

-- object is "experiment:ID", "library:ID" or "realization:ID"; rights is
-- domain.Rights.Encode(). A grant of no rights is no row.
CREATE TABLE grants (
    object TEXT {{bytewise}} NOT NULL,
    circle TEXT {{bytewise}} NOT NULL,
    rights TEXT NOT NULL,
    CONSTRAINT grants_pkey PRIMARY KEY (object, circle)
);
CREATE INDEX grants_circle ON grants (circle);

-- attributes is a JSON object of strings: constraints are matched by the
-- caller, so the store never looks inside.
CREATE TABLE resources (
    name       TEXT {{bytewise}} NOT NULL,
    kind       TEXT NOT NULL,
    provider   TEXT {{bytewise}} NOT NULL,
    attributes TEXT NOT NULL,
    state      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT resources_pkey PRIMARY KEY (name)
);
-- Available (kind, state) and filtered listings, in name order.
CREATE INDEX resources_kind_state ON resources (kind, state, name);

-- A zero lease_expires_at means no lease: Expired never returns it.
-- released_at is 0 while the realization is live.
CREATE TABLE realizations (
    id               TEXT {{bytewise}} NOT NULL,
    experiment       TEXT {{bytewise}} NOT NULL,
    project          TEXT {{bytewise}} NOT NULL,
    owner            TEXT {{bytewise}} NOT NULL,
    state            TEXT NOT NULL,
    lease_expires_at BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    released_at      BIGINT NOT NULL,
    CONSTRAINT realizations_pkey PRIMARY KEY (id)
);
-- Expired: live states, by lease.
CREATE INDEX realizations_state_lease ON realizations (state, lease_expires_at);

-- One row per element of a realization: the primary key makes an element
-- bound to one resource at a time. live is true while the realization is;
-- ending it clears live and keeps the rows as the record of what it had.
-- Rebinding an element replaces its row.
--
-- The resource's foreign key is NO ACTION rather than RESTRICT (see 0003:
-- SQLite reports RESTRICT as a trigger error): a resource with bindings
-- cannot be deleted. Resources.Delete refuses a live one with
-- failed-precondition and removes ended realizations' bindings of it first.
CREATE TABLE bindings (
    realization TEXT {{bytewise}} NOT NULL,
    element     TEXT {{bytewise}} NOT NULL,
    resource    TEXT {{bytewise}} NOT NULL,
    live        BOOLEAN NOT NULL,
    CONSTRAINT bindings_pkey PRIMARY KEY (realization, element),
    CONSTRAINT bindings_realization_fkey FOREIGN KEY (realization) REFERENCES realizations (id) ON DELETE CASCADE,
    CONSTRAINT bindings_resource_fkey FOREIGN KEY (resource) REFERENCES resources (name) ON DELETE NO ACTION
);
-- The guarantee: a resource is in at most one live binding, whichever
-- replica writes. Both databases support partial unique indexes; its name
-- (PostgreSQL) or column (SQLite: bindings.resource) identifies a violation.
CREATE UNIQUE INDEX bindings_live_resource ON bindings (resource) WHERE live;
-- Serves the foreign key when a resource is deleted (ended bindings too).
CREATE INDEX bindings_resource ON bindings (resource);
