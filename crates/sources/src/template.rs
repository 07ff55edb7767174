//! The templates the project writes back: a book as the CSV a source's mapping preset reads,
//! so a book can go to Baremetrics (its subscription import template) or to a spreadsheet
//! (the generic pt-BR `planilha` mapping) and come back the same.
//!
//! A template holds less than a book: what it cannot hold is refused, never dropped
//! (Baremetrics has no discount column, whole cents only, and no daily plans; neither
//! template has contracts' terms). Lines are written with their effective end (a line that
//! another `revises` ends the day before the revising one starts, as the importer reads it).

use expansa_ledger::{Book, Decimal, IntervalUnit};

/// A line a template cannot hold: its id and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwritable {
    pub line: String,
    pub reason: String,
}

impl std::fmt::Display for Unwritable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

fn csv_writer(separator: u8) -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .delimiter(separator)
        .from_writer(Vec::new())
}

fn finish(w: csv::Writer<Vec<u8>>) -> Vec<u8> {
    w.into_inner().unwrap_or_default()
}

/// The book as Baremetrics' subscription import template
/// (<https://help.baremetrics.com/en/articles/5380088-manual-subscription-import-guide>):
/// `plan_amount` in whole cents of `plan_currency` (the line's discounted unit price), the
/// interval as `week`, `month` or `year` with its count, `subscription_canceled_at` the day
/// after the last day served. Errors: every line the template cannot hold.
pub fn baremetrics(book: &Book) -> Result<Vec<u8>, Vec<Unwritable>> {
    let mut w = csv_writer(b',');
    let _ = w.write_record([
        "plan_oid",
        "plan_name",
        "plan_currency",
        "plan_amount",
        "plan_interval",
        "plan_interval_count",
        "customer_oid",
        "customer_name",
        "customer_email",
        "subscription_oid",
        "subscription_started_at",
        "subscription_canceled_at",
        "subscription_quantity",
    ]);
    let mut refused = Vec::new();
    for (k, line) in book.lines.items.iter().enumerate() {
        let id = book.lines.ids.get(k as u32);
        let currency = line.currency;
        let keep = (Decimal::ONE_HUNDRED - line.discount_pct.get()) / Decimal::ONE_HUNDRED;
        let price = line.unit_price.get() * keep;
        let cents = price * Decimal::from(10u64.pow(currency.minor_units()));
        if cents.fract() != Decimal::ZERO {
            refused.push(Unwritable {
                line: id.to_string(),
                reason: format!(
                    "its price {price} {currency} is not a whole number of minor units (plan_amount is in cents)"
                ),
            });
            continue;
        }
        let (interval, count) = match line.billing_period.unit() {
            IntervalUnit::Week => ("week", line.billing_period.count()),
            IntervalUnit::Day => {
                refused.push(Unwritable {
                    line: id.to_string(),
                    reason: "is billed by days: Baremetrics plans are weekly, monthly or yearly"
                        .into(),
                });
                continue;
            }
            _ => {
                let months = line.billing_period.count();
                if months % 12 == 0 {
                    ("year", months / 12)
                } else {
                    ("month", months)
                }
            }
        };
        let customer = book.customers.ids.get(line.customer);
        let product = book.products.ids.get(line.product);
        let canceled = line
            .end
            .and_then(|d| d.tomorrow().ok())
            .map(|d| d.to_string())
            .unwrap_or_default();
        let _ = w.write_record([
            product,
            book.products.items[line.product as usize]
                .name
                .as_deref()
                .unwrap_or(""),
            currency.code(),
            &cents.normalize().to_string(),
            interval,
            &count.to_string(),
            customer,
            book.customers
                .name
                .get_opt(line.customer as usize)
                .unwrap_or(""),
            "",
            id,
            &line.start.to_string(),
            &canceled,
            &line.quantity.get().normalize().to_string(),
        ]);
    }
    if refused.is_empty() {
        Ok(finish(w))
    } else {
        Err(refused)
    }
}

/// Decimal text with a decimal comma, as a pt-BR spreadsheet writes it (`1234,5`).
fn comma(d: Decimal) -> String {
    d.normalize().to_string().replace('.', ",")
}

/// The book as the generic pt-BR spreadsheet the `planilha` mapping reads: `;`-separated,
/// decimal commas, Portuguese headers, one row per line with every field of a line (its
/// contract, discount, billing interval, dates, sale day and the line it revises).
pub fn planilha(book: &Book) -> Vec<u8> {
    let mut w = csv_writer(b';');
    let _ = w.write_record([
        "Código",
        "Cliente",
        "Nome do cliente",
        "Contrato",
        "Produto",
        "Quantidade",
        "Valor",
        "Desconto",
        "Moeda",
        "Intervalo",
        "Intervalo quantidade",
        "Início",
        "Fim",
        "Vendido em",
        "Revisa",
    ]);
    for (k, line) in book.lines.items.iter().enumerate() {
        let (interval, count) = match line.billing_period.unit() {
            IntervalUnit::Week => ("semana", line.billing_period.count()),
            IntervalUnit::Day => ("dia", line.billing_period.count()),
            _ => ("mês", line.billing_period.count()),
        };
        let id = book.lines.ids.get(k as u32);
        let contract = book.lines.contract_id(k as u32);
        let sold = book.lines.sold_on(k as u32);
        let _ = w.write_record([
            id,
            book.customers.ids.get(line.customer),
            book.customers
                .name
                .get_opt(line.customer as usize)
                .unwrap_or(""),
            if contract == id { "" } else { contract },
            book.products.ids.get(line.product),
            &comma(line.quantity.get()),
            &comma(line.unit_price.get()),
            &comma(line.discount_pct.get()),
            line.currency.code(),
            interval,
            &count.to_string(),
            &line.start.to_string(),
            &line.end.map(|d| d.to_string()).unwrap_or_default(),
            &if sold == line.start {
                String::new()
            } else {
                sold.to_string()
            },
            line.revises().map(|r| book.lines.ids.get(r)).unwrap_or(""),
        ]);
    }
    finish(w)
}
