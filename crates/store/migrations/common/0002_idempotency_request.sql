-- expansa store, version 2 (the same in both dialects): a digest of the request each
-- idempotency key was first used with, so that the key reused for another request is refused
-- instead of answered with the first one's result. Keys kept before this have '' (replayed as
-- before, whatever the request).
ALTER TABLE idempotency ADD COLUMN request TEXT NOT NULL DEFAULT '';
