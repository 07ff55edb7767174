-- expansa store, version 6 (the same in both dialects): the customer portal's access links
-- (docs/portal.md). A link's secret is never stored: its SHA-256 is. Times are UTC, RFC 3339
-- with microseconds (fixed width: text order is time order).
CREATE TABLE portal_links (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX portal_links_customer ON portal_links (customer_id);
