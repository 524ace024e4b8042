-- +goose Up
-- Teams: several people sign in to one account, each with a role there,
-- and one person may belong to several accounts. A membership is the
-- pair; its role decides what the person may do in that account.
-- users.account_id stays: it is the account the user came in through
-- (made at sign-up, or the one whose invitation created the user).
CREATE TABLE memberships (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'billing', 'viewer')),
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (account_id, user_id)
);
CREATE INDEX memberships_user_id ON memberships (user_id);
-- An account has one owner at most; the store keeps it at exactly one.
CREATE UNIQUE INDEX memberships_one_owner ON memberships (account_id) WHERE role = 'owner';

-- Every user so far is the owner of their account. Should an account hold
-- more than one user, its first is the owner and the others admins.
INSERT INTO memberships (account_id, user_id, role, created_at)
SELECT u.account_id, u.id,
       CASE WHEN EXISTS (SELECT 1 FROM users o WHERE o.account_id = u.account_id
                         AND (o.created_at < u.created_at OR (o.created_at = u.created_at AND o.id < u.id)))
            THEN 'admin' ELSE 'owner' END,
       u.created_at
FROM users u;

-- The role lives in memberships now.
ALTER TABLE users DROP COLUMN role;

-- A session works in one account at a time: the active account, which
-- the header's switcher changes. '' is none (a user who belongs nowhere).
ALTER TABLE sessions ADD COLUMN account_id TEXT NOT NULL DEFAULT '';
UPDATE sessions SET account_id = (SELECT users.account_id FROM users WHERE users.id = sessions.user_id);

-- An invitation to join an account with a role. The link carries a random
-- token; only its SHA-256 is kept. It is used once, within 7 days, unless
-- revoked first.
CREATE TABLE invitations (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    email       TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'developer', 'billing', 'viewer')),
    token_hash  TEXT NOT NULL UNIQUE,
    invited_by  TEXT NOT NULL REFERENCES users (id),
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    accepted_at TIMESTAMP,
    revoked_at  TIMESTAMP
);
CREATE INDEX invitations_account_id ON invitations (account_id, created_at);
-- One open invitation per address and account.
CREATE UNIQUE INDEX invitations_open ON invitations (account_id, email) WHERE accepted_at IS NULL AND revoked_at IS NULL;

-- +goose Down
DROP TABLE invitations;
ALTER TABLE sessions DROP COLUMN account_id;
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'owner';
DROP TABLE memberships;
