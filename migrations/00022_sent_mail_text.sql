-- +goose Up
-- A sent mail's text is no longer kept once it is sent (its links may still
-- work for days); this clears the text that earlier versions kept.
UPDATE mail_outbox SET text_body = '', html_body = '' WHERE sent_at IS NOT NULL;

-- +goose Down
-- The text is gone; there is nothing to bring back.
SELECT 1;
