-- Push approval: device keys on push tokens, per-user push state, and push transactions.

ALTER TABLE tokens ADD COLUMN device_public_key TEXT;
ALTER TABLE tokens ADD COLUMN device_name TEXT;
ALTER TABLE tokens ADD COLUMN enrollment_code_hash TEXT;
ALTER TABLE tokens ADD COLUMN enrollment_expires_at INTEGER;
ALTER TABLE tokens ADD COLUMN wake_service TEXT;
ALTER TABLE tokens ADD COLUMN wake_token TEXT;

ALTER TABLE users ADD COLUMN push_muted_until INTEGER;
ALTER TABLE users ADD COLUMN last_success_at INTEGER;
ALTER TABLE users ADD COLUMN push_guard INTEGER NOT NULL DEFAULT 0;

CREATE TABLE push_transactions (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    service         TEXT NOT NULL,
    client_ip       TEXT,
    user_agent      TEXT,
    number_matching TEXT NOT NULL,
    number          INTEGER,
    choices         TEXT NOT NULL,
    status          TEXT NOT NULL,
    deny_reason     TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    answered_at     INTEGER,
    answered_by     TEXT
);
CREATE INDEX push_by_user ON push_transactions(user_id, status, expires_at);
CREATE INDEX push_by_user_time ON push_transactions(user_id, created_at);
