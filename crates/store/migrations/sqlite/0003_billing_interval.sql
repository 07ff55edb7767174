-- expansa store, version 3: subscriptions.csv's billing_interval and billing_interval_count
-- (docs/interchange.md), appended after the older columns. Rows kept before this hold them,
-- if a file had them, among the extra columns; the store reads those into the new columns
-- (crates/store/src/lib.rs, `promote_extra`), so nothing is rewritten here.
ALTER TABLE "subscriptions" ADD COLUMN "billing_interval" TEXT;
ALTER TABLE "subscriptions" ADD COLUMN "billing_interval_count" TEXT;
