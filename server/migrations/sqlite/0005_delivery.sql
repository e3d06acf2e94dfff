-- Delivered passcodes (SMS and email) and temporary passcodes: a user's preferred channel, a delivered token's mode and
-- progress, real-time challenges, and the outbox of messages to send. No code is stored: a
-- message names the counters it carries, and the sender computes the codes when it sends.

ALTER TABLE users ADD COLUMN delivery_preference TEXT NOT NULL DEFAULT 'app';

ALTER TABLE tokens ADD COLUMN delivery_mode TEXT;
ALTER TABLE tokens ADD COLUMN destination TEXT;
ALTER TABLE tokens ADD COLUMN ttl_secs INTEGER;
ALTER TABLE tokens ADD COLUMN period_days INTEGER;
ALTER TABLE tokens ADD COLUMN issued_upto INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN last_delivered_period INTEGER;

-- Temporary passcodes (the help desk's): an Argon2id hash, an expiry and a number of uses (the
-- token's counter counts the uses).
ALTER TABLE tokens ADD COLUMN passcode_hash TEXT;
ALTER TABLE tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE tokens ADD COLUMN max_uses INTEGER;

CREATE TABLE challenges (
    id          TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_id    INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    counter     INTEGER NOT NULL,
    tries       INTEGER NOT NULL DEFAULT 0,
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX challenges_by_time ON challenges(created_at);

CREATE TABLE deliveries (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id             INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_id            INTEGER REFERENCES tokens(id) ON DELETE SET NULL,
    challenge_id        TEXT,
    channel             TEXT NOT NULL,
    destination         TEXT NOT NULL,
    mode                TEXT NOT NULL,
    counter_from        INTEGER NOT NULL,
    counter_to          INTEGER NOT NULL,
    service             TEXT NOT NULL,
    status              TEXT NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     INTEGER NOT NULL,
    lease_until         INTEGER,
    gateway             TEXT,
    provider_message_id TEXT,
    error               TEXT,
    created_at          INTEGER NOT NULL,
    sent_at             INTEGER
);
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
CREATE INDEX deliveries_by_user ON deliveries(user_id, created_at);
CREATE INDEX deliveries_by_destination ON deliveries(destination, created_at);
CREATE INDEX deliveries_by_token ON deliveries(token_id, created_at);
CREATE INDEX deliveries_by_time ON deliveries(created_at);
