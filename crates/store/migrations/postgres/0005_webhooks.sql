-- expansa store, version 5: events received from billing systems by webhook (docs/api.md,
-- "Webhooks"), each kept once by its source and id, queued, then applied, ignored or failed.
CREATE TABLE webhook_events (
    seq BIGSERIAL PRIMARY KEY,
    source TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created BIGINT NOT NULL,
    subject TEXT,
    payload TEXT NOT NULL,
    received_at TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    store_event BIGINT,
    done_at TEXT,
    UNIQUE (source, event_id)
);
CREATE INDEX webhook_events_state ON webhook_events (state, seq);
CREATE INDEX webhook_events_subject ON webhook_events (source, subject, state);
