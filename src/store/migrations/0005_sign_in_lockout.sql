-- Sign-in lockout per account and client address: failures in a row from one address lock that
-- address out of that account only. `users.failed_attempts` counts the recent failures from all
-- addresses (forgotten `lockout_seconds` after the last one, `users.last_failed_at`), and
-- `users.locked_until` is now the short account-wide wait that many of them impose.

CREATE TABLE sign_in_failures (
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_addr  TEXT NOT NULL,
    failures     INTEGER NOT NULL,
    last_at      INTEGER NOT NULL,
    locked_until INTEGER,
    PRIMARY KEY (user_id, client_addr)
);

ALTER TABLE users ADD COLUMN last_failed_at INTEGER;
-- Account-wide locks of the old scheme end here.
UPDATE users SET failed_attempts = 0, locked_until = NULL;
