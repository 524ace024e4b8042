-- +goose Up
-- Async tasks (POST /v1/tasks): the fixed price is held at creation and
-- captured on success; failure, cancel and expiry release it.
CREATE TABLE tasks (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    key_id       TEXT NOT NULL,
    request_id   TEXT NOT NULL, -- the POST /v1/tasks request, whose outcome follows the task
    hold_id      TEXT NOT NULL,
    model        TEXT NOT NULL,
    upstream_id  TEXT NOT NULL,
    status       TEXT NOT NULL, -- running | succeeded | failed | cancelled | expired
    price_micros BIGINT NOT NULL,
    result       TEXT NOT NULL DEFAULT '',
    error        TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    ended_at     TIMESTAMP
);
CREATE INDEX tasks_account ON tasks (account_id, id);
CREATE INDEX tasks_running ON tasks (status, expires_at);

-- +goose Down
DROP TABLE tasks;
