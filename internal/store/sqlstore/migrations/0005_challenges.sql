-- Challenge-response login.
--
-- users.scram_verifier is what a scram-argon2id login verifies: salt,
-- Argon2id parameters, StoredKey and ServerKey (see internal/auth/scram),
-- with a salt of its own so that neither it nor password_hash lets a thief
-- log in without the password. '' for passwords set before it existed: the
-- next password login fills it in.
ALTER TABLE users ADD COLUMN scram_verifier TEXT NOT NULL DEFAULT '';

-- A challenge is single use (Consume deletes it) and short-lived. Its uid is
-- the string asked for, an account or not (answers must not reveal which
-- accounts exist), so it has no foreign key.
CREATE TABLE challenges (
    id         TEXT NOT NULL,
    uid        TEXT {{bytewise}} NOT NULL,
    type       TEXT NOT NULL,
    data       TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT challenges_pkey PRIMARY KEY (id)
);
-- (uid, created_at): Trim keeps a uid's newest challenges.
CREATE INDEX challenges_uid ON challenges (uid, created_at);
CREATE INDEX challenges_expires_at ON challenges (expires_at);

-- Secrets every replica must share, created by whichever needs one first
-- (the key that derives decoy challenges for unknown uids).
CREATE TABLE server_secrets (
    name       TEXT NOT NULL,
    value      {{blob}} NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT server_secrets_pkey PRIMARY KEY (name)
);
