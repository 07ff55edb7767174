-- expansa store, version 9: a write is validated on the rows of the customers it changes, and
-- the latest book is brought up to date from the rows an event added or closed: the current
-- rows of a customer, of a contract and naming a line are found by index, and so are the rows
-- an event closed.
CREATE INDEX "subscriptions_customer" ON "subscriptions" (customer_id) WHERE removed_in IS NULL;
CREATE INDEX "subscriptions_contract" ON "subscriptions" (contract_id) WHERE removed_in IS NULL;
CREATE INDEX "contracts_customer" ON "contracts" (customer_id) WHERE removed_in IS NULL;
CREATE INDEX "contracted_prices_customer" ON "contracted_prices" (customer_id) WHERE removed_in IS NULL;
CREATE INDEX "usage_customer" ON "usage" (customer_id) WHERE removed_in IS NULL;
CREATE INDEX "offers_customer" ON "offers" (customer_id) WHERE removed_in IS NULL;
CREATE INDEX "offers_line" ON "offers" (line_id) WHERE removed_in IS NULL;
CREATE INDEX "subscriptions_removed" ON "subscriptions" (removed_in) WHERE removed_in IS NOT NULL;
CREATE INDEX "customers_removed" ON "customers" (removed_in) WHERE removed_in IS NOT NULL;
CREATE INDEX "products_removed" ON "products" (removed_in) WHERE removed_in IS NOT NULL;
CREATE INDEX "contracts_removed" ON "contracts" (removed_in) WHERE removed_in IS NOT NULL;
CREATE INDEX "contracted_prices_removed" ON "contracted_prices" (removed_in) WHERE removed_in IS NOT NULL;
CREATE INDEX "fx_rates_removed" ON "fx_rates" (removed_in) WHERE removed_in IS NOT NULL;
CREATE INDEX "marketing_spend_removed" ON "marketing_spend" (removed_in) WHERE removed_in IS NOT NULL;
CREATE INDEX "usage_removed" ON "usage" (removed_in) WHERE removed_in IS NOT NULL;
CREATE INDEX "offers_removed" ON "offers" (removed_in) WHERE removed_in IS NOT NULL;
-- A bound on the book's total MRR (the sum of its lines' MRR in units of 10^-10 of the
-- reporting currency, as decimal text): exact after a write validated on the whole book, raised
-- by the new lines' MRR after one validated on the customers it changes. Past the book's limit,
-- the next write is validated whole. One row (id 1), or none before the first whole validation.
CREATE TABLE book_mrr_bound (
    id INTEGER PRIMARY KEY,
    units TEXT NOT NULL
);
