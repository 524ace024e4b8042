-- +goose Up
-- Mail waits in the outbox until a background worker of some instance has
-- handed it to the SMTP server (or, without one, to the log), so a slow or
-- failing mail server never slows a page and a restart loses nothing.
-- next_attempt_at is when a worker may take the mail next; a worker that
-- takes it moves it ahead by a lease with a guarded update, so two
-- instances do not send it twice. It is NULL once the mail is sent
-- (sent_at) or given up after its last attempt (failed_at, last_error).
CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NULL,
    sent_at         TIMESTAMP NULL,
    failed_at       TIMESTAMP NULL,
    last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE next_attempt_at IS NOT NULL;

-- Single-use links sent by mail: a password reset (purpose 'reset') or an
-- email address to confirm ('verify'). Only the SHA-256 of the token is
-- kept; the mail holds the token itself. email is the address the link
-- was sent to: a confirmation counts only while the user still has it.
CREATE TABLE user_tokens (
    token_hash TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id),
    email      TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP NULL
);
CREATE INDEX user_tokens_user ON user_tokens (user_id, purpose);

-- Accounts made before addresses were confirmed count as confirmed: their
-- owners see no banner.
ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMP NULL;
UPDATE users SET email_verified_at = created_at;

-- +goose Down
ALTER TABLE users DROP COLUMN email_verified_at;
DROP TABLE user_tokens;
DROP TABLE mail_outbox;
