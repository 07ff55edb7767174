-- expansa store, version 7: the amendments customers make on the portal (docs/portal.md): the
-- exact PDF shown and its SHA-256, and once signed, the signature record (UTC time, name,
-- e-mail, client address, user agent), the event that applied it and the invoice that bills
-- it, numbered without gaps per vendor by invoice_counters, all written in one transaction.
CREATE TABLE portal_amendments (
    id TEXT PRIMARY KEY,
    link_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    contract_id TEXT NOT NULL,
    request TEXT NOT NULL,
    quote TEXT NOT NULL,
    pdf BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    signed_at TEXT,
    signer_name TEXT,
    signer_email TEXT,
    client_address TEXT,
    user_agent TEXT,
    event BIGINT,
    invoice_vendor TEXT,
    invoice_number BIGINT,
    invoice_pdf BLOB,
    invoice_sha256 TEXT
);
CREATE INDEX portal_amendments_sha256 ON portal_amendments (sha256);
CREATE INDEX portal_amendments_customer ON portal_amendments (customer_id, created_at);

CREATE TABLE invoice_counters (
    vendor TEXT PRIMARY KEY,
    last BIGINT NOT NULL
);
