-- One Swipe: the nonces of redeemed codes, so that each code logs in once, whichever replica sees it.
-- Rows are deleted once expired (the code itself is refused by then).

CREATE TABLE oneswipe_nonces (
    token_id   INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    nonce      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (token_id, nonce)
);
CREATE INDEX oneswipe_nonces_by_expiry ON oneswipe_nonces(expires_at);
