-- expansa store, version 4: accounts and roles (viewer, analyst, admin), sessions, the
-- role of each API key (keys made before are admin: they could write) and the audit of
-- reads of customer data.
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    disabled_at TEXT
);

-- A session's token is never stored: its SHA-256 is. Times are Unix seconds (UTC).
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    created_unix BIGINT NOT NULL,
    seen_unix BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_name);

ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';

CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status BIGINT NOT NULL
);
CREATE INDEX audit_at ON audit (at);
