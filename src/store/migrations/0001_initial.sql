-- The console's own state. Times are Unix milliseconds.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until  INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    client_addr   TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    role        TEXT,
    action      TEXT NOT NULL,
    target      TEXT,
    object      TEXT,
    parameters  TEXT NOT NULL DEFAULT '{}',
    outcome     TEXT NOT NULL,
    client_addr TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
-- Append-only: no route, job or person can alter or remove what happened.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    target          TEXT,
    priority        INTEGER NOT NULL,
    state           TEXT NOT NULL,
    parameters      TEXT NOT NULL DEFAULT '{}',
    idempotency_key TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL DEFAULT 1,
    run_at          INTEGER NOT NULL,
    lease_until     INTEGER,
    progress        TEXT,
    last_error      TEXT,
    requested_by    TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER
);
CREATE INDEX jobs_ready ON jobs (state, priority, run_at);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (idempotency_key)
    WHERE idempotency_key IS NOT NULL AND state IN ('pending', 'running');

CREATE TABLE alert_state (
    rule         TEXT NOT NULL,
    labels       TEXT NOT NULL,
    state        TEXT NOT NULL,
    value        REAL,
    active_since INTEGER,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (rule, labels)
);

CREATE TABLE metric_history (
    series       TEXT NOT NULL,
    bucket_start INTEGER NOT NULL,
    bucket_ms    INTEGER NOT NULL,
    min          REAL NOT NULL,
    avg          REAL NOT NULL,
    max          REAL NOT NULL,
    last         REAL NOT NULL,
    samples      INTEGER NOT NULL,
    PRIMARY KEY (series, bucket_ms, bucket_start)
);
