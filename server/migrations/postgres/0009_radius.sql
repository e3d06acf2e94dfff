-- RADIUS challenges in progress (an Access-Challenge waiting for the client's next request),
-- shared by every replica. Only the SHA-256 of the State is stored; a row is taken once.

CREATE TABLE radius_states (
    state_hash     TEXT PRIMARY KEY,
    username       TEXT NOT NULL,
    client         TEXT NOT NULL,
    transaction_id TEXT,
    push           BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);

CREATE INDEX radius_states_by_expiry ON radius_states (expires_at);
