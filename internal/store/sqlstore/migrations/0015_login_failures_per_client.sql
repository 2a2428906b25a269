-- Failed logins are counted per uid string and per client (the address a
-- request came from, as package clientaddr keys it; '' for none), so that
-- one client's guessing slows that client down and not the account's owner
-- logging in from elsewhere. The old per-uid counts are transient (they
-- decay within the back-off's maximum) and are dropped, not carried over.
DROP TABLE login_failures;
CREATE TABLE login_failures (
    uid      TEXT {{bytewise}} NOT NULL,
    client   TEXT {{bytewise}} NOT NULL,
    failures INTEGER NOT NULL,
    last_at  BIGINT NOT NULL,
    CONSTRAINT login_failures_pkey PRIMARY KEY (uid, client)
);
-- The janitor forgets old failures by age.
CREATE INDEX login_failures_last_at ON login_failures (last_at);
