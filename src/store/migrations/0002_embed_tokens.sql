-- Keys the console generates once and keeps, such as the one that signs embed tokens.
CREATE TABLE console_keys (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

-- Embed tokens minted (the token itself is never stored: it is signed, and this row lets it be
-- listed and revoked).
CREATE TABLE embed_tokens (
    id         TEXT PRIMARY KEY,
    label      TEXT NOT NULL,
    scope      TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
