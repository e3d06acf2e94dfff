-- One Swipe: the nonces of redeemed codes, so that each code logs in once, whichever replica sees it.
-- A token's expired rows are deleted when it next redeems a code (an expired code is refused anyway).

CREATE TABLE oneswipe_nonces (
    token_id   INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    nonce      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (token_id, nonce)
);
