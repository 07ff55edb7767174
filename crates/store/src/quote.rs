//! The rows an applied quote writes.

use crate::RowChange;
use expansa_contracts::{LineChange, NewLine, Quote};
use expansa_import::schema::{Schema, CONTRACTS, SUBSCRIPTIONS};
use expansa_ledger::RenewalPricing;

/// The row changes that record `quote` in the book: closed lines get their end date, new
/// lines and a renewal's contract are added (never overwriting a different row), lines
/// that start on or after an amendment's effective day are replaced or removed outright.
pub fn quote_changes(quote: &Quote) -> Vec<RowChange> {
    let mut changes = Vec::new();
    if let Some(c) = &quote.new_contract {
        let values = row(
            &CONTRACTS,
            &[
                ("id", Some(c.id.clone())),
                ("customer_id", Some(c.customer_id.clone())),
                ("start_date", Some(c.start.to_string())),
                ("end_date", Some(c.end.to_string())),
                (
                    "renewal_pricing",
                    Some(
                        match c.renewal_pricing {
                            RenewalPricing::Same => "same",
                            RenewalPricing::List => "list",
                            RenewalPricing::Uplift => "uplift",
                        }
                        .to_string(),
                    ),
                ),
                (
                    "renewal_uplift_pct",
                    c.renewal_uplift_pct.map(|d| d.to_string()),
                ),
                (
                    "renewal_term_months",
                    c.renewal_term_months.map(|m| m.to_string()),
                ),
            ],
        );
        changes.push(RowChange::Put {
            schema: CONTRACTS,
            values,
            extra: Vec::new(),
            create_only: true,
        });
    }
    for change in &quote.changes {
        match change {
            LineChange::Close { line_id, end } => changes.push(RowChange::Set {
                schema: SUBSCRIPTIONS,
                key: line_id.clone(),
                column: "end_date",
                value: Some(end.to_string()),
            }),
            LineChange::Open(l) => changes.push(RowChange::Put {
                schema: SUBSCRIPTIONS,
                values: row(&SUBSCRIPTIONS, &line_values(l)),
                extra: Vec::new(),
                create_only: true,
            }),
            // A new version of the row: the columns an amendment changes are set (its end:
            // a line without one co-terminates with the contract it was charged to), the
            // rest of the row (its start, what it revises, columns of its own) stays.
            LineChange::Replace(l) => {
                for (column, value) in line_values(l) {
                    if matches!(
                        column,
                        "quantity"
                            | "product_id"
                            | "unit_price"
                            | "discount_pct"
                            | "currency"
                            | "billing_period_months"
                            | "billing_interval"
                            | "billing_interval_count"
                            | "end_date"
                    ) {
                        changes.push(RowChange::Set {
                            schema: SUBSCRIPTIONS,
                            key: l.id.clone(),
                            column,
                            value,
                        });
                    }
                }
            }
            LineChange::Remove { line_id } => changes.push(RowChange::Remove {
                schema: SUBSCRIPTIONS,
                key: line_id.clone(),
            }),
        }
    }
    changes
}

/// The columns of a line's row in subscriptions.csv.
fn line_values(l: &NewLine) -> Vec<(&'static str, Option<String>)> {
    // Days and weeks (docs/interchange.md) in billing_interval(_count); whole months as before.
    let months = l.billing_period.whole_months();
    vec![
        ("id", Some(l.id.clone())),
        ("customer_id", Some(l.customer_id.clone())),
        ("contract_id", Some(l.contract_id.clone())),
        ("product_id", Some(l.product_id.clone())),
        ("quantity", Some(l.quantity.to_string())),
        ("unit_price", Some(l.unit_price.to_string())),
        ("discount_pct", Some(l.discount_pct.to_string())),
        ("currency", Some(l.currency.code().to_string())),
        ("billing_period_months", months.map(|m| m.to_string())),
        (
            "billing_interval",
            months
                .is_none()
                .then(|| l.billing_period.unit().name().to_string()),
        ),
        (
            "billing_interval_count",
            months
                .is_none()
                .then(|| l.billing_period.count().to_string()),
        ),
        ("start_date", Some(l.start.to_string())),
        ("end_date", l.end.map(|d| d.to_string())),
        ("revises", l.revises.clone()),
    ]
}

/// A row of `schema` with the named values (the rest empty).
fn row(schema: &Schema, named: &[(&str, Option<String>)]) -> Vec<Option<String>> {
    let mut values = vec![None; schema.columns.len()];
    for (column, value) in named {
        if let Some(k) = schema.position(column) {
            values[k] = value.clone();
        }
    }
    values
}

/// A quote being applied: its contract, the event of the book it was priced on, and what
/// signing it records (a portal amendment).
pub(crate) struct Priced<'a> {
    pub contract: &'a str,
    pub at: i64,
    pub signing: Option<&'a crate::Signing<'a>>,
}

impl Priced<'_> {
    /// Under the write lock: no line of the contract written after the book the quote was
    /// priced on, by any write but this one (`event`). Two amendments of one contract priced on
    /// the same book cannot both apply.
    pub(crate) async fn check(
        &self,
        tx: &mut crate::Tx,
        event: i64,
    ) -> Result<(), crate::StoreError> {
        use sqlx::Row;
        let lines = crate::table_name(&expansa_import::schema::SUBSCRIPTIONS);
        let since: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) FROM \"{lines}\" WHERE contract_id = $1 AND \
             ((added_in > $2 AND added_in < $3) OR (removed_in > $2 AND removed_in < $3))"
        ))
        .bind(self.contract)
        .bind(self.at)
        .bind(event)
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
        if since == 0 {
            return Ok(());
        }
        Err(crate::StoreError::Conflict(match self.signing {
            Some(signing) => format!(
                "contract {} changed while amendment {} was being signed (another change was \
                 applied first): make the document again",
                self.contract, signing.amendment
            ),
            None => format!(
                "contract {} changed after the quote was priced (on the book at event {}; \
                 another change was applied first): price it again",
                self.contract, self.at
            ),
        }))
    }
}
