-- One logical schema for SQLite and PostgreSQL. {{autoid}}, {{blob}} and
-- {{bytewise}} are replaced per flavor (see flavor.go). Times are BIGINT
-- microseconds since the Unix epoch, 0 for "never". Constraints are named so
-- that PostgreSQL's errors say which field is taken.

CREATE TABLE users (
    uid            TEXT {{bytewise}} NOT NULL,
    email          TEXT NOT NULL,
    -- email_key is the lower-cased address: uniqueness ignores case.
    email_key      TEXT NOT NULL,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    state          TEXT NOT NULL,
    admin          BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash  TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (uid)
);
CREATE UNIQUE INDEX users_email_key ON users (email_key);
CREATE INDEX users_admin ON users (uid) WHERE admin;

CREATE TABLE profiles (
    kind  TEXT NOT NULL,
    id    TEXT NOT NULL,
    name  TEXT NOT NULL,
    value TEXT NOT NULL,
    CONSTRAINT profiles_pkey PRIMARY KEY (kind, id, name)
);

CREATE TABLE sessions (
    id                TEXT NOT NULL,
    uid               TEXT {{bytewise}} NOT NULL REFERENCES users (uid) ON DELETE CASCADE,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    revoked_at        BIGINT NOT NULL DEFAULT 0,
    refresh_hash      {{blob}},
    prev_refresh_hash {{blob}},
    last_seen_at      BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT sessions_pkey PRIMARY KEY (id)
);
CREATE INDEX sessions_uid ON sessions (uid);
CREATE UNIQUE INDEX sessions_refresh_hash ON sessions (refresh_hash);
CREATE INDEX sessions_prev_refresh_hash ON sessions (prev_refresh_hash);
CREATE INDEX sessions_revoked_at ON sessions (revoked_at) WHERE revoked_at <> 0;
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE one_time_tokens (
    hash       {{blob}} NOT NULL,
    purpose    TEXT NOT NULL,
    uid        TEXT {{bytewise}} NOT NULL REFERENCES users (uid) ON DELETE CASCADE,
    data       TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT one_time_tokens_pkey PRIMARY KEY (hash)
);
CREATE INDEX one_time_tokens_uid ON one_time_tokens (uid, purpose);

-- Keyed by the uid string as typed, account or not: the back-off must not
-- reveal which accounts exist.
CREATE TABLE login_failures (
    uid      TEXT NOT NULL,
    failures INTEGER NOT NULL,
    last_at  BIGINT NOT NULL,
    CONSTRAINT login_failures_pkey PRIMARY KEY (uid)
);

CREATE TABLE signing_keys (
    id          TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    public_key  {{blob}} NOT NULL,
    private_key {{blob}} NOT NULL,
    created_at  BIGINT NOT NULL,
    not_after   BIGINT NOT NULL,
    CONSTRAINT signing_keys_pkey PRIMARY KEY (id)
);

CREATE TABLE audit_events (
    id           {{autoid}},
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    on_behalf_of TEXT NOT NULL,
    operation    TEXT NOT NULL,
    object       TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    detail       TEXT NOT NULL
);
-- (column, id): filter on the column, page newest first by id.
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_object ON audit_events (object, id);
CREATE INDEX audit_events_operation ON audit_events (operation, id);
CREATE INDEX audit_events_at ON audit_events (at);

CREATE TABLE outbox (
    id         {{autoid}},
    created_at BIGINT NOT NULL,
    recipient  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    sent_at    BIGINT NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    attempts   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_recipient ON outbox (recipient, id);
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at = 0;

-- The change feed. Its one counter row is the point of serialization: a
-- writer that appends a change locks the row until it commits, so sequence
-- numbers are handed out in commit order and without gaps.
CREATE TABLE change_counter (
    id  INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    CONSTRAINT change_counter_pkey PRIMARY KEY (id),
    CONSTRAINT change_counter_one_row CHECK (id = 1)
);
INSERT INTO change_counter (id, seq) VALUES (1, 0);

CREATE TABLE changes (
    seq        BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    object_key TEXT NOT NULL,
    at         BIGINT NOT NULL,
    CONSTRAINT changes_pkey PRIMARY KEY (seq)
);
