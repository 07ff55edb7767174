-- expansa store, version 1: the event log and one versioned table per file of the
-- interchange format. Money and quantities are exact: NUMERIC in PostgreSQL, canonical
-- decimal text in SQLite; no SQL here or in the code does arithmetic on them.
-- A row is current while removed_in is NULL; it is visible as of event E when
-- added_in <= E and (removed_in IS NULL or removed_in > E).

CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX events_at ON events (at);

CREATE TABLE idempotency (
    key TEXT PRIMARY KEY,
    event_id BIGINT,
    response TEXT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE dashboards (
    id TEXT PRIMARY KEY,
    layout TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE "subscriptions" (
    row_key TEXT NOT NULL,
    ord BIGINT NOT NULL,
    added_in BIGINT NOT NULL REFERENCES events (id),
    removed_in BIGINT REFERENCES events (id),
    extra TEXT,
    "id" TEXT,
    "customer_id" TEXT,
    "contract_id" TEXT,
    "product_id" TEXT,
    "quantity" NUMERIC,
    "unit_price" NUMERIC,
    "discount_pct" NUMERIC,
    "currency" TEXT,
    "billing_period_months" BIGINT,
    "start_date" DATE,
    "end_date" DATE,
    "sold_on" DATE,
    "revises" TEXT
);
CREATE UNIQUE INDEX "subscriptions_current" ON "subscriptions" (row_key) WHERE removed_in IS NULL;
CREATE INDEX "subscriptions_added" ON "subscriptions" (added_in);

CREATE TABLE "customers" (
    row_key TEXT NOT NULL,
    ord BIGINT NOT NULL,
    added_in BIGINT NOT NULL REFERENCES events (id),
    removed_in BIGINT REFERENCES events (id),
    extra TEXT,
    "id" TEXT,
    "name" TEXT,
    "registered_on" DATE,
    "segment" TEXT,
    "country" TEXT,
    "channel" TEXT
);
CREATE UNIQUE INDEX "customers_current" ON "customers" (row_key) WHERE removed_in IS NULL;
CREATE INDEX "customers_added" ON "customers" (added_in);

CREATE TABLE "products" (
    row_key TEXT NOT NULL,
    ord BIGINT NOT NULL,
    added_in BIGINT NOT NULL REFERENCES events (id),
    removed_in BIGINT REFERENCES events (id),
    extra TEXT,
    "id" TEXT,
    "name" TEXT,
    "family" TEXT,
    "tier" BIGINT,
    "kind" TEXT,
    "list_price" NUMERIC,
    "price_term_months" BIGINT,
    "currency" TEXT
);
CREATE UNIQUE INDEX "products_current" ON "products" (row_key) WHERE removed_in IS NULL;
CREATE INDEX "products_added" ON "products" (added_in);

CREATE TABLE "contracts" (
    row_key TEXT NOT NULL,
    ord BIGINT NOT NULL,
    added_in BIGINT NOT NULL REFERENCES events (id),
    removed_in BIGINT REFERENCES events (id),
    extra TEXT,
    "id" TEXT,
    "customer_id" TEXT,
    "start_date" DATE,
    "end_date" DATE,
    "renewal_pricing" TEXT,
    "renewal_uplift_pct" NUMERIC,
    "renewal_term_months" BIGINT
);
CREATE UNIQUE INDEX "contracts_current" ON "contracts" (row_key) WHERE removed_in IS NULL;
CREATE INDEX "contracts_added" ON "contracts" (added_in);

CREATE TABLE "contracted_prices" (
    row_key TEXT NOT NULL,
    ord BIGINT NOT NULL,
    added_in BIGINT NOT NULL REFERENCES events (id),
    removed_in BIGINT REFERENCES events (id),
    extra TEXT,
    "customer_id" TEXT,
    "product_id" TEXT,
    "price" NUMERIC,
    "discount_pct" NUMERIC,
    "valid_from" DATE,
    "valid_to" DATE
);
CREATE UNIQUE INDEX "contracted_prices_current" ON "contracted_prices" (row_key) WHERE removed_in IS NULL;
CREATE INDEX "contracted_prices_added" ON "contracted_prices" (added_in);

CREATE TABLE "fx_rates" (
    row_key TEXT NOT NULL,
    ord BIGINT NOT NULL,
    added_in BIGINT NOT NULL REFERENCES events (id),
    removed_in BIGINT REFERENCES events (id),
    extra TEXT,
    "month" TEXT,
    "currency" TEXT,
    "rate" NUMERIC
);
CREATE UNIQUE INDEX "fx_rates_current" ON "fx_rates" (row_key) WHERE removed_in IS NULL;
CREATE INDEX "fx_rates_added" ON "fx_rates" (added_in);

CREATE TABLE "marketing_spend" (
    row_key TEXT NOT NULL,
    ord BIGINT NOT NULL,
    added_in BIGINT NOT NULL REFERENCES events (id),
    removed_in BIGINT REFERENCES events (id),
    extra TEXT,
    "month" TEXT,
    "channel" TEXT,
    "amount" NUMERIC
);
CREATE UNIQUE INDEX "marketing_spend_current" ON "marketing_spend" (row_key) WHERE removed_in IS NULL;
CREATE INDEX "marketing_spend_added" ON "marketing_spend" (added_in);

CREATE TABLE "usage" (
    row_key TEXT NOT NULL,
    ord BIGINT NOT NULL,
    added_in BIGINT NOT NULL REFERENCES events (id),
    removed_in BIGINT REFERENCES events (id),
    extra TEXT,
    "customer_id" TEXT,
    "product_id" TEXT,
    "month" TEXT,
    "used" NUMERIC,
    "included" NUMERIC
);
CREATE UNIQUE INDEX "usage_current" ON "usage" (row_key) WHERE removed_in IS NULL;
CREATE INDEX "usage_added" ON "usage" (added_in);

CREATE TABLE "offers" (
    row_key TEXT NOT NULL,
    ord BIGINT NOT NULL,
    added_in BIGINT NOT NULL REFERENCES events (id),
    removed_in BIGINT REFERENCES events (id),
    extra TEXT,
    "id" TEXT,
    "customer_id" TEXT,
    "product_id" TEXT,
    "kind" TEXT,
    "offered_on" DATE,
    "outcome" TEXT,
    "decided_on" DATE,
    "line_id" TEXT
);
CREATE UNIQUE INDEX "offers_current" ON "offers" (row_key) WHERE removed_in IS NULL;
CREATE INDEX "offers_added" ON "offers" (added_in);
