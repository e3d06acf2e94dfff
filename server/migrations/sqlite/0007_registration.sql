-- Registration codes: the help desk's single-use credential that lets a user without any token
-- into the self-service portal to enrol their first one. One live code per user (a new one
-- replaces it); only its SHA-256 is kept (100 random bits, so a fast hash suffices).

CREATE TABLE registration_codes (
    user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL UNIQUE,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
