-- Projects, circles, pending requests and notifications.
--
-- Foreign keys on users:
--   * projects.owner refuses the deletion: a project must always have an
--     owner (only the owner transfers ownership), so removing a user who
--     owns a project fails until the project is handed over or deleted,
--     rather than leaving it ownerless or silently deleting it with its
--     members' standing. It is NO ACTION, not RESTRICT: with immediate
--     constraints they refuse the same deletions, but SQLite reports a
--     RESTRICT violation as SQLITE_CONSTRAINT_TRIGGER, which flavor's
--     foreignKey does not recognize, and NO ACTION as a foreign-key
--     violation on both databases.
--   * memberships, requests about or by a user and notifications to a user
--     are ON DELETE CASCADE: they mean nothing without the user.
-- circles.owner is a uid or a project name, so it has no foreign key; the
-- service deletes a project's circles (Circles.DeleteOwnedBy) with it.
-- Objects of requests ("project:NAME", "circle:OWNER:NAME") are strings for
-- the same reason: Requests.DeleteByObject clears them.

CREATE TABLE projects (
    name        TEXT {{bytewise}} NOT NULL,
    owner       TEXT {{bytewise}} NOT NULL,
    state       TEXT NOT NULL,
    vetting     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL,
    approved_at BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT projects_pkey PRIMARY KEY (name),
    CONSTRAINT projects_owner_fkey FOREIGN KEY (owner) REFERENCES users (uid) ON DELETE NO ACTION
);
-- Serves the foreign key (no sequential scan when a user is deleted).
CREATE INDEX projects_owner ON projects (owner);

CREATE TABLE project_members (
    project  TEXT {{bytewise}} NOT NULL,
    uid      TEXT {{bytewise}} NOT NULL,
    rights   TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    CONSTRAINT project_members_pkey PRIMARY KEY (project, uid),
    CONSTRAINT project_members_project_fkey FOREIGN KEY (project) REFERENCES projects (name) ON DELETE CASCADE,
    CONSTRAINT project_members_uid_fkey FOREIGN KEY (uid) REFERENCES users (uid) ON DELETE CASCADE
);
CREATE INDEX project_members_uid ON project_members (uid, project);

-- An edge parent <- child: child's members get rights in parent. Cycles are
-- the service's to refuse; the store keeps edges.
CREATE TABLE project_children (
    parent TEXT {{bytewise}} NOT NULL,
    child  TEXT {{bytewise}} NOT NULL,
    rights TEXT NOT NULL,
    CONSTRAINT project_children_pkey PRIMARY KEY (parent, child),
    CONSTRAINT project_children_parent_fkey FOREIGN KEY (parent) REFERENCES projects (name) ON DELETE CASCADE,
    CONSTRAINT project_children_child_fkey FOREIGN KEY (child) REFERENCES projects (name) ON DELETE CASCADE
);
CREATE INDEX project_children_child ON project_children (child, parent);

-- id is owner:name as created; owner may change later (SetOwner), the id
-- does not.
CREATE TABLE circles (
    id         TEXT {{bytewise}} NOT NULL,
    owner      TEXT {{bytewise}} NOT NULL,
    name       TEXT {{bytewise}} NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT circles_pkey PRIMARY KEY (id)
);
CREATE INDEX circles_owner ON circles (owner, id);

CREATE TABLE circle_members (
    circle   TEXT {{bytewise}} NOT NULL,
    uid      TEXT {{bytewise}} NOT NULL,
    rights   TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    CONSTRAINT circle_members_pkey PRIMARY KEY (circle, uid),
    CONSTRAINT circle_members_circle_fkey FOREIGN KEY (circle) REFERENCES circles (id) ON DELETE CASCADE,
    CONSTRAINT circle_members_uid_fkey FOREIGN KEY (uid) REFERENCES users (uid) ON DELETE CASCADE
);
CREATE INDEX circle_members_uid ON circle_members (uid, circle);

-- A request is live while expires_at > now; expired rows wait for
-- DeleteExpired.
CREATE TABLE requests (
    id         TEXT {{bytewise}} NOT NULL,
    kind       TEXT NOT NULL,
    object     TEXT {{bytewise}} NOT NULL,
    subject    TEXT {{bytewise}} NOT NULL,
    requester  TEXT {{bytewise}} NOT NULL,
    rights     TEXT NOT NULL,
    message    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT requests_pkey PRIMARY KEY (id),
    CONSTRAINT requests_subject_fkey FOREIGN KEY (subject) REFERENCES users (uid) ON DELETE CASCADE,
    CONSTRAINT requests_requester_fkey FOREIGN KEY (requester) REFERENCES users (uid) ON DELETE CASCADE
);
-- Find (object, kind, subject); its prefix serves ListByObjects and
-- DeleteByObject.
CREATE INDEX requests_object ON requests (object, kind, subject);
CREATE INDEX requests_subject ON requests (subject);
CREATE INDEX requests_requester ON requests (requester);
CREATE INDEX requests_kind ON requests (kind, expires_at);
CREATE INDEX requests_expires_at ON requests (expires_at);

-- request_id is no foreign key: the notification outlives the request it
-- carried (accepted, declined, expired). sender is "" for Trellis itself.
CREATE TABLE notifications (
    id         {{autoid}},
    recipient  TEXT {{bytewise}} NOT NULL,
    sender     TEXT NOT NULL,
    text       TEXT NOT NULL,
    urgent     BOOLEAN NOT NULL DEFAULT FALSE,
    read       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    request_id TEXT NOT NULL DEFAULT '',
    CONSTRAINT notifications_recipient_fkey FOREIGN KEY (recipient) REFERENCES users (uid) ON DELETE CASCADE
);
-- (recipient, id): one user's notifications, paged by id either way.
CREATE INDEX notifications_recipient ON notifications (recipient, id);
