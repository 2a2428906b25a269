-- Users and projects share one namespace: both own circles named
-- owner:name, so a uid equal to a project's name would make their circles
-- clash. Every uid and project name is claimed here, in the transaction
-- that creates the user or project; the key refuses the second claim
-- whichever replica makes it, and a project's name is freed with it.
CREATE TABLE names (
    name TEXT {{bytewise}} NOT NULL,
    kind TEXT NOT NULL,
    CONSTRAINT names_pkey PRIMARY KEY (name)
);
-- Existing clashes (made before this table) keep the user's claim.
INSERT INTO names (name, kind) SELECT uid, 'user' FROM users WHERE true ON CONFLICT (name) DO NOTHING;
INSERT INTO names (name, kind) SELECT name, 'project' FROM projects WHERE true ON CONFLICT (name) DO NOTHING;
