-- Tombstones of closed accounts. The users row of a closed account is
-- deleted (its sessions, tokens, keys, memberships, requests and
-- notifications go with it by cascade); this row keeps its uid from ever
-- being given to someone else, since audit records and what the account
-- owned still name it.
CREATE TABLE closed_accounts (
    uid       TEXT {{bytewise}} NOT NULL,
    closed_at BIGINT NOT NULL,
    closed_by TEXT NOT NULL,
    CONSTRAINT closed_accounts_pkey PRIMARY KEY (uid)
);
