-- Tessera verification server schema, SQLite dialect (the PostgreSQL file mirrors it).
-- Times are Unix seconds (audit: milliseconds). Booleans are 0/1 integers in both dialects.

CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    phone         TEXT,
    email         TEXT,
    created_at    INTEGER NOT NULL
);

CREATE TABLE tokens (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    serial          TEXT NOT NULL UNIQUE,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    algorithm       TEXT NOT NULL,
    digits          INTEGER NOT NULL,
    period          INTEGER NOT NULL,
    seed            BLOB,
    description     TEXT,
    enabled         INTEGER NOT NULL,
    counter         INTEGER NOT NULL,
    last_step       INTEGER,
    drift           INTEGER NOT NULL,
    failures        INTEGER NOT NULL,
    locked_at       INTEGER,
    version         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER
);
CREATE INDEX tokens_by_user ON tokens(user_id);

CREATE TABLE admin_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);

CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms     INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    username  TEXT,
    serial    TEXT,
    client_ip TEXT,
    result    TEXT NOT NULL,
    reason    TEXT
);
CREATE INDEX audit_by_time ON audit(at_ms);
CREATE INDEX audit_by_user ON audit(username, at_ms);
