-- An authority's chain: certificates that tie its root to the roots before
-- it. After an X.509 CA rotation it holds the new root cross-signed by the
-- old key and the old root (DER, one after the other), so that peers that
-- still trust only the old root verify what the new one issues.
ALTER TABLE authorities ADD COLUMN chain {{blob}} NOT NULL DEFAULT '';
