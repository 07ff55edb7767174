//! A contract and a quote as a table, JSON or CSV (CSV: the lines, one per row).

use crate::{ContractView, Quote};
use expansa_ledger::{csv_rows, fixed, BillingPeriod, Decimal, Format, Locale, Money};
use expansa_movements::table;
use serde_json::{json, Value};

/// Digits a prorate multiplier is printed with (as CPQ shows it); the fraction is exact.
const MULTIPLIER_DP: u32 = 10;

/// A price as printed: at least the currency's minor unit, at most 10 places, exact below that.
fn price(d: Decimal, dp: u32) -> String {
    let n = d.normalize();
    fixed(n, n.scale().clamp(dp, 10))
}

/// `billing_period_months` as a CSV prints it: empty for a period of days or weeks.
fn months(period: BillingPeriod) -> String {
    period
        .whole_months()
        .map_or(String::new(), |m| m.to_string())
}

fn quantity(d: Decimal) -> String {
    d.normalize().to_string()
}

/// The contract's terms and held lines.
pub fn render_contract(view: &ContractView, format: Format) -> String {
    let dp = view.currency.minor_units();
    let code = view.currency.code();
    match format {
        Format::Csv => csv_rows(
            &[
                "line_id",
                "product_id",
                "quantity",
                "unit_price",
                "discount_pct",
                "billing_period_months",
                "price_term_months",
                "term_unit_price",
                "mrr",
                "start",
                "end",
                "billing_interval",
                "billing_interval_count",
            ],
            view.lines.iter().map(|h| {
                vec![
                    h.line_id.clone(),
                    h.product_id.clone(),
                    quantity(h.quantity),
                    price(h.unit_price, dp),
                    quantity(h.discount_pct),
                    months(h.billing_period),
                    h.price_term_months.to_string(),
                    price(h.term_unit_price, dp),
                    h.mrr.plain(view.currency),
                    h.start.to_string(),
                    h.end.map_or(String::new(), |d| d.to_string()),
                    h.billing_period.unit().name().to_string(),
                    h.billing_period.count().to_string(),
                ]
            }),
        ),
        Format::Json => {
            let lines: Vec<Value> = view
                .lines
                .iter()
                .map(|h| {
                    json!({
                        "line_id": h.line_id,
                        "product_id": h.product_id,
                        "quantity": quantity(h.quantity),
                        "unit_price": price(h.unit_price, dp),
                        "discount_pct": quantity(h.discount_pct),
                        "billing_period_months": h.billing_period.whole_months(),
                        "billing_interval": h.billing_period.unit().name(),
                        "billing_interval_count": h.billing_period.count(),
                        "price_term_months": h.price_term_months,
                        "term_unit_price": price(h.term_unit_price, dp),
                        "mrr": h.mrr.plain(view.currency),
                        "start": h.start.to_string(),
                        "end": h.end.map(|d| d.to_string()),
                    })
                })
                .collect();
            let v = json!({
                "contract": view.id,
                "customer_id": view.customer_id,
                "start": view.start.to_string(),
                "end": view.end.map(|d| d.to_string()),
                "evergreen": view.end.is_none(),
                "term_months": view.term_months,
                "renewal_pricing": view.renewal_pricing_name(),
                "renewal_uplift_pct": view.renewal_uplift_pct.map(quantity),
                "renewal_term_months": view.renewal_term_months,
                "at": view.at.to_string(),
                "currency": code,
                "lines": lines,
                "mrr": view.mrr.plain(view.currency),
            });
            v.to_string() + "\n"
        }
        Format::Table(locale) => {
            let pt = locale == Locale::PtBr;
            let mut out = format!(
                "{} {} ({} {}): {} .. {}{}\n",
                if pt { "Contrato" } else { "Contract" },
                view.id,
                if pt { "cliente" } else { "customer" },
                view.customer_id,
                view.start,
                view.end.map_or(
                    if pt {
                        "sem fim (evergreen)".into()
                    } else {
                        "evergreen".into()
                    },
                    |d| d.to_string()
                ),
                view.term_months.map_or(String::new(), |m| format!(
                    ", {m} {}",
                    if pt { "meses" } else { "months" }
                )),
            );
            out += &format!(
                "{}: {}{}\n",
                if pt { "Renovação" } else { "Renewal" },
                view.renewal_pricing_name(),
                view.renewal_uplift_pct
                    .map_or(String::new(), |p| format!(" +{}%", quantity(p))),
            );
            let mut rows = vec![[
                if pt { "linha" } else { "line" },
                if pt { "produto" } else { "product" },
                if pt { "qtd" } else { "qty" },
                if pt { "preço unit." } else { "unit price" },
                if pt { "desc. %" } else { "disc. %" },
                if pt { "período" } else { "period" },
                if pt { "preço/prazo" } else { "term price" },
                "MRR",
                if pt { "início" } else { "start" },
                if pt { "fim" } else { "end" },
            ]
            .map(String::from)
            .to_vec()];
            for h in &view.lines {
                rows.push(vec![
                    h.line_id.clone(),
                    h.product_id.clone(),
                    quantity(h.quantity),
                    price(h.unit_price, dp),
                    quantity(h.discount_pct),
                    h.billing_period.to_string(),
                    format!("{} /{}m", price(h.term_unit_price, dp), h.price_term_months),
                    locale.money(h.mrr, view.currency),
                    h.start.to_string(),
                    h.end.map_or("-".into(), |d| d.to_string()),
                ]);
            }
            out += &format!("{} {}:\n", if pt { "Itens em" } else { "Held on" }, view.at);
            out += &table(
                &rows,
                &[
                    false, false, true, true, true, true, true, true, false, false,
                ],
            );
            out += &format!("MRR: {}\n", locale.money(view.mrr, view.currency));
            out
        }
    }
}

/// A quote: its priced lines, total and the MRR before and after.
pub fn render_quote(quote: &Quote, format: Format) -> String {
    let dp = quote.currency.minor_units();
    let mrr = |m: Money| m.plain(quote.currency);
    match format {
        Format::Csv => csv_rows(
            &[
                "product_id",
                "prior_quantity",
                "quantity",
                "effective_quantity",
                "unit_price",
                "price_term_months",
                "prorate_multiplier",
                "prorated_unit_price",
                "net_total",
            ],
            quote.lines.iter().map(|l| {
                vec![
                    l.product_id.clone(),
                    quantity(l.prior_quantity),
                    quantity(l.quantity),
                    quantity(l.effective_quantity),
                    price(l.unit_price, dp),
                    l.price_term_months.to_string(),
                    fixed(l.prorate_multiplier.rounded(MULTIPLIER_DP), MULTIPLIER_DP),
                    fixed(l.prorated_unit_price, dp),
                    fixed(l.net_total, dp),
                ]
            }),
        ),
        Format::Json => {
            let lines: Vec<Value> = quote
                .lines
                .iter()
                .map(|l| {
                    json!({
                        "product_id": l.product_id,
                        "prior_quantity": quantity(l.prior_quantity),
                        "quantity": quantity(l.quantity),
                        "effective_quantity": quantity(l.effective_quantity),
                        "unit_price": price(l.unit_price, dp),
                        "price_term_months": l.price_term_months,
                        "prorate_multiplier": fixed(l.prorate_multiplier.rounded(MULTIPLIER_DP), MULTIPLIER_DP),
                        "prorate_fraction": l.prorate_multiplier.to_string(),
                        "prorated_unit_price": fixed(l.prorated_unit_price, dp),
                        "net_total": fixed(l.net_total, dp),
                    })
                })
                .collect();
            let v = json!({
                "kind": quote.kind,
                "contract": quote.contract,
                "customer_id": quote.customer_id,
                "effective": quote.effective.to_string(),
                "end": quote.end.map(|d| d.to_string()),
                "precision": quote.precision.to_string(),
                "currency": quote.currency.code(),
                "lines": lines,
                "total": fixed(quote.total, dp),
                "mrr_before": mrr(quote.mrr_before),
                "mrr_after": mrr(quote.mrr_after),
            });
            v.to_string() + "\n"
        }
        Format::Table(locale) => {
            let pt = locale == Locale::PtBr;
            let what = match (quote.kind, pt) {
                (crate::QuoteKind::Amend, false) => "Amendment",
                (crate::QuoteKind::Amend, true) => "Aditivo",
                (crate::QuoteKind::Renew, false) => "Renewal",
                (crate::QuoteKind::Renew, true) => "Renovação",
            };
            let mut out = format!(
                "{what} {} {} ({} {}): {} .. {}, {} {}, {}\n",
                if pt { "do contrato" } else { "of contract" },
                quote.contract,
                if pt { "cliente" } else { "customer" },
                quote.customer_id,
                quote.effective,
                quote.end.map_or(
                    if pt {
                        "sem fim: um prazo de preço".into()
                    } else {
                        "evergreen: one price term".into()
                    },
                    |d| d.to_string()
                ),
                if pt { "proporção" } else { "proration" },
                quote.precision,
                quote.currency.code(),
            );
            let mut rows = vec![[
                if pt { "produto" } else { "product" },
                if pt { "qtd antes" } else { "prior qty" },
                if pt { "qtd" } else { "qty" },
                if pt { "cobrada" } else { "charged" },
                if pt { "preço/prazo" } else { "term price" },
                if pt { "multiplicador" } else { "multiplier" },
                if pt {
                    "preço proporcional"
                } else {
                    "prorated price"
                },
                if pt { "total líquido" } else { "net total" },
            ]
            .map(String::from)
            .to_vec()];
            let money = |d: Decimal| locale.money(Money::from_decimal(d), quote.currency);
            for l in &quote.lines {
                rows.push(vec![
                    l.product_id.clone(),
                    quantity(l.prior_quantity),
                    quantity(l.quantity),
                    quantity(l.effective_quantity),
                    format!("{} /{}m", price(l.unit_price, dp), l.price_term_months),
                    fixed(l.prorate_multiplier.rounded(MULTIPLIER_DP), MULTIPLIER_DP),
                    money(l.prorated_unit_price),
                    money(l.net_total),
                ]);
            }
            rows.push(vec![
                "total".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                money(quote.total),
            ]);
            out += &table(&rows, &[false, true, true, true, true, true, true, true]);
            out += &format!(
                "MRR: {} -> {}\n",
                locale.money(quote.mrr_before, quote.currency),
                locale.money(quote.mrr_after, quote.currency)
            );
            out
        }
    }
}
