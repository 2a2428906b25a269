-- An authority's chain: what ties its root to the one it replaced. After
-- an X.509 CA rotation, the issuing root's row holds the replaced root
-- (DER), trusted until the certificates it issued have expired (see
-- internal/auth/x509ca); empty when it replaced none.
ALTER TABLE authorities ADD COLUMN chain {{blob}} NOT NULL DEFAULT '';
