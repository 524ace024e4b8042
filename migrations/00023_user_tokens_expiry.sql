-- +goose Up
-- The reaper deletes the rows of links a while after they expired
-- (Store.PurgeUserTokens, every minute on every instance): by this index,
-- not by reading every link there is.
CREATE INDEX user_tokens_expires ON user_tokens (expires_at);

-- +goose Down
DROP INDEX user_tokens_expires;
