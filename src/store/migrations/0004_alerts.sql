-- Alerts for on-call: each firing episode of an alert instance (the history, and where its
-- acknowledgement lives), silences, and the webhook outbox. The evaluator keeps the states of
-- the moment in memory, so the never-used table of the first schema goes.
DROP TABLE alert_state;

CREATE TABLE alert_episodes (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL,
    rule        TEXT NOT NULL,
    target      TEXT NOT NULL,
    labels      TEXT NOT NULL,
    severity    TEXT NOT NULL,
    summary     TEXT NOT NULL,
    runbook_url TEXT,
    value       REAL,
    threshold   REAL NOT NULL,
    chart       TEXT,
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    acked_by    TEXT,
    acked_at    INTEGER,
    ack_comment TEXT
);
-- At most one open episode per instance.
CREATE UNIQUE INDEX alert_episodes_open ON alert_episodes (key) WHERE ended_at IS NULL;
CREATE INDEX alert_episodes_started ON alert_episodes (started_at);

CREATE TABLE alert_silences (
    id         INTEGER PRIMARY KEY,
    matchers   TEXT NOT NULL,
    comment    TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    ends_at    INTEGER NOT NULL,
    expired_by TEXT,
    expired_at INTEGER
);

-- One message per webhook, episode and status: a message is queued once, whatever happens.
CREATE TABLE alert_notifications (
    id           INTEGER PRIMARY KEY,
    webhook      TEXT NOT NULL,
    episode_id   INTEGER NOT NULL REFERENCES alert_episodes (id) ON DELETE CASCADE,
    status       TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    delivered_at INTEGER,
    failed_at    INTEGER,
    last_error   TEXT,
    UNIQUE (webhook, episode_id, status)
);
CREATE INDEX alert_notifications_due ON alert_notifications (next_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
