-- Security review 1: a user's password lock (a wrong password counts against the user, whether or
-- not the user has a token), relying-party applications (their key names the service a device
-- shows), and an index to prune old push transactions.

ALTER TABLE users ADD COLUMN password_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN password_locked_at INTEGER;

CREATE TABLE applications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE,
    key_hash     TEXT NOT NULL UNIQUE,
    service_name TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE INDEX push_by_time ON push_transactions(created_at);
