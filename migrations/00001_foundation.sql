-- +goose Up
-- Ids are text (a prefix and a ULID) made by the application, so the same
-- schema runs on SQLite and PostgreSQL. Times are stored in UTC.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    max_rpm    INTEGER NOT NULL DEFAULT 600,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts (id),
    email               TEXT NOT NULL UNIQUE,
    password_hash       TEXT NOT NULL,
    role                TEXT NOT NULL DEFAULT 'owner',
    created_at          TIMESTAMP NOT NULL,
    password_changed_at TIMESTAMP NOT NULL
);
CREATE INDEX users_account_id ON users (account_id);

CREATE TABLE wallets (
    account_id     TEXT PRIMARY KEY REFERENCES accounts (id),
    balance_micros BIGINT NOT NULL DEFAULT 0,
    held_micros    BIGINT NOT NULL DEFAULT 0 CHECK (held_micros >= 0),
    updated_at     TIMESTAMP NOT NULL
);

-- A session row is the server side of a signed-in browser. The cookie holds
-- only a random token; the table keeps its SHA-256, so a leaked database
-- does not hand out live sessions.
CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    created_at   TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    ip           TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_id ON sessions (user_id);

-- +goose Down
DROP TABLE sessions;
DROP TABLE wallets;
DROP TABLE users;
DROP TABLE accounts;
DROP TABLE settings;
