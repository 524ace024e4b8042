-- +goose Up
-- Indexes behind the Requests page. Every list is one account's rows,
-- newest first, paged by id (ids are time-ordered ULIDs), so each filter
-- gets (account_id, <filter>, id): the database seeks to the filter value
-- and walks ids backwards from the cursor, never sorting, never skipping.
-- The status index is on the expression status / 100, so "4xx" is one
-- equality instead of a range that would have to be re-sorted; an exact
-- code ("429") walks its class and checks the code. Every index here is
-- paid on each gateway write, so there is no second one for exact codes.
CREATE INDEX requests_account_status_class ON requests (account_id, (status / 100), id);
CREATE INDEX requests_account_error_type ON requests (account_id, error_type, id);
CREATE INDEX requests_account_key ON requests (account_id, key_id, id);
CREATE INDEX requests_account_model ON requests (account_id, model, id);
CREATE INDEX requests_account_outcome ON requests (account_id, billing_outcome, id);

-- +goose Down
DROP INDEX requests_account_outcome;
DROP INDEX requests_account_model;
DROP INDEX requests_account_key;
DROP INDEX requests_account_error_type;
DROP INDEX requests_account_status_class;
