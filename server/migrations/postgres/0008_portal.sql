-- Sessions of the self-service portal, kept in the database so that every replica knows them.
-- Only the SHA-256 of the session id is stored (256 random bits, held by the browser in a
-- __Host- cookie); a session is `awaiting_approval` (a push) or `awaiting_code` (a sent code) after the
-- password, then `signed_in`. `factor_at` is when the user last proved a second factor (step-up), and
-- `factor_kind` the kind of token that proved it (none for a registration code).

CREATE TABLE portal_sessions (
    id_hash        TEXT PRIMARY KEY,
    user_id        BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    stage          TEXT NOT NULL,
    transaction_id TEXT,
    prompt         TEXT,
    created_at     BIGINT NOT NULL,
    last_seen_at   BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    factor_at      BIGINT,
    factor_kind    TEXT,
    client_ip      TEXT,
    user_agent     TEXT
);

CREATE INDEX portal_sessions_by_user ON portal_sessions (user_id);
CREATE INDEX portal_sessions_by_expiry ON portal_sessions (expires_at);

-- A token the user added in the portal is pending until its first code (or its device's
-- registration) proves it; `replaces` names the user's token it retires at that moment (replace my
-- phone). A pending token never accepts a code, and is pruned once `pending_until` passes.
ALTER TABLE tokens ADD COLUMN pending_until BIGINT;
ALTER TABLE tokens ADD COLUMN replaces TEXT;

-- Notices about the account ("a new device was added") travel through the outbox beside codes:
-- `mode` is 'notice', no token and no counters, and the text (which holds no secret) is stored.
ALTER TABLE deliveries ADD COLUMN notice TEXT;
