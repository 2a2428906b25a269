-- A mailed token (e-mail confirmation, password reset) no longer sits in
-- the outbox's body, where anyone reading the database or a backup of it
-- could redeem it: the body names it with a placeholder and the token is
-- kept sealed (with the key-encryption key) beside it until delivery, then
-- forgotten. Bodies of mail already delivered held such tokens: they go,
-- the record of the mail stays.
ALTER TABLE outbox ADD COLUMN secret {{blob}};
UPDATE outbox SET body = '' WHERE sent_at <> 0;
