-- expansa store, version 8: what a signed portal amendment sends (docs/portal.md): its two
-- PDFs by e-mail (to the signer and to finance) and the signed provisioning webhook. Each
-- delivery is queued in the transaction that applies the amendment, so none is ever lost; it is
-- tried until it is sent, and every attempt is logged.
CREATE TABLE portal_deliveries (
    id BIGSERIAL PRIMARY KEY,
    amendment_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_unix BIGINT NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX portal_deliveries_due ON portal_deliveries (state, next_unix);
CREATE INDEX portal_deliveries_amendment ON portal_deliveries (amendment_id);

CREATE TABLE portal_delivery_attempts (
    id BIGSERIAL PRIMARY KEY,
    delivery_id BIGINT NOT NULL,
    at TEXT NOT NULL,
    ok BIGINT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX portal_delivery_attempts_delivery ON portal_delivery_attempts (delivery_id);
