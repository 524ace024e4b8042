-- +goose Up
-- The audit log: every change made to an account, in the console or with
-- the admin CLI, by whom, from where and in which console request. A row
-- is written in the transaction of the change it records, and never
-- changed afterwards.
--
-- ids are aud_ + a ULID and at is the ULID's own millisecond, so the id
-- alone orders and pages the log (newest first) and a time range is a
-- range of ids: every index ends with id. actor_user_id is the member who
-- acted, NULL for the admin CLI and the payment provider; actor is the
-- name as it was then (a member's email, 'admin CLI', 'payment provider').
-- field names the setting a change is about (rpm, models …), '' for none;
-- before and after are that setting as a person reads it.
CREATE TABLE audit_log (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL,
    at            TIMESTAMP NOT NULL,
    actor_user_id TEXT,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    target        TEXT NOT NULL DEFAULT '',
    target_label  TEXT NOT NULL DEFAULT '',
    field         TEXT NOT NULL DEFAULT '',
    before        TEXT NOT NULL DEFAULT '',
    after         TEXT NOT NULL DEFAULT '',
    ip            TEXT NOT NULL DEFAULT '',
    request_id    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_account ON audit_log (account_id, id);
CREATE INDEX audit_log_action ON audit_log (account_id, action, id);
CREATE INDEX audit_log_actor ON audit_log (account_id, actor_user_id, id);
-- A key's page lists the changes to that key.
CREATE INDEX audit_log_target ON audit_log (account_id, target, id);

-- Key events become the log's first rows, each keeping its ULID (so its
-- time and order), its actor found again by email, and the key's name.
INSERT INTO audit_log (id, account_id, at, actor_user_id, actor, action, target, target_label, field, before, after)
SELECT 'aud_' || substr(e.id, 5), e.account_id, e.created_at,
    (SELECT u.id FROM users u WHERE u.email = e.actor),
    CASE WHEN e.actor = 'admin cli' THEN 'admin CLI' ELSE e.actor END,
    CASE e.field
        WHEN 'created' THEN 'key.created'
        WHEN 'status' THEN CASE e.new_value WHEN 'disabled' THEN 'key.disabled' WHEN 'revoked' THEN 'key.revoked' ELSE 'key.enabled' END
        WHEN 'keep_bodies' THEN 'key.keep_bodies_changed'
        WHEN 'kept_bodies' THEN 'key.bodies_deleted'
        ELSE 'key.updated'
    END,
    e.key_id, COALESCE(k.name, ''), CASE WHEN e.field = 'created' THEN '' ELSE e.field END, e.old_value, e.new_value
FROM key_events e LEFT JOIN api_keys k ON k.id = e.key_id;
DROP TABLE key_events;

-- +goose Down
CREATE TABLE key_events (
    id         TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL REFERENCES api_keys (id),
    account_id TEXT NOT NULL,
    actor      TEXT NOT NULL,
    field      TEXT NOT NULL,
    old_value  TEXT NOT NULL DEFAULT '',
    new_value  TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX key_events_key ON key_events (key_id, id);
INSERT INTO key_events (id, key_id, account_id, actor, field, old_value, new_value, created_at)
SELECT 'kev_' || substr(a.id, 5), a.target, a.account_id,
    CASE WHEN a.actor = 'admin CLI' THEN 'admin cli' ELSE a.actor END,
    CASE WHEN a.action = 'key.created' THEN 'created' ELSE a.field END, a.before, a.after, a.at
FROM audit_log a
WHERE (a.action LIKE 'key.%' OR a.action LIKE 'request.fix.%') AND a.target IN (SELECT id FROM api_keys);
DROP TABLE audit_log;
