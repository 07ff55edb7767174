//! A contract and a quote as a table, JSON or CSV (CSV: the lines, one per row).

use crate::{ContractView, HeldLine, Quote};
use expansa_ledger::{
    csv_rows, fixed, BillingPeriod, Currency, Date, Decimal, Format, Locale, Money,
};
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

/// One held line as JSON (prices in the line's currency, MRR in the reporting currency).
fn line_json(h: &HeldLine, reporting: Currency) -> Value {
    let dp = h.currency.minor_units();
    json!({
        "line_id": h.line_id,
        "product_id": h.product_id,
        "quantity": quantity(h.quantity),
        "currency": h.currency.code(),
        "unit_price": price(h.unit_price, dp),
        "discount_pct": quantity(h.discount_pct),
        "billing_period_months": h.billing_period.whole_months(),
        "billing_interval": h.billing_period.unit().name(),
        "billing_interval_count": h.billing_period.count(),
        "price_term_months": h.price_term_months,
        "term_unit_price": price(h.term_unit_price, dp),
        "mrr": h.mrr.plain(reporting),
        "start": h.start.to_string(),
        "end": h.end.map(|d| d.to_string()),
    })
}

/// The contract's terms, the lines it holds and those that start later (CSV: the held lines,
/// then the later ones, with a `held` column).
pub fn render_contract(view: &ContractView, format: Format) -> String {
    let reporting = view.reporting_currency;
    let rows = view
        .lines
        .iter()
        .map(|h| (true, h))
        .chain(view.later.iter().map(|h| (false, h)));
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
                "currency",
                "held",
            ],
            rows.map(|(held, h)| {
                let dp = h.currency.minor_units();
                vec![
                    h.line_id.clone(),
                    h.product_id.clone(),
                    quantity(h.quantity),
                    price(h.unit_price, dp),
                    quantity(h.discount_pct),
                    months(h.billing_period),
                    h.price_term_months.to_string(),
                    price(h.term_unit_price, dp),
                    h.mrr.plain(reporting),
                    h.start.to_string(),
                    h.end.map_or(String::new(), |d| d.to_string()),
                    h.billing_period.unit().name().to_string(),
                    h.billing_period.count().to_string(),
                    h.currency.code().to_string(),
                    held.to_string(),
                ]
            }),
        ),
        Format::Json => {
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
                "reporting_currency": reporting.code(),
                "lines": view.lines.iter().map(|h| line_json(h, reporting)).collect::<Vec<_>>(),
                "later": view.later.iter().map(|h| line_json(h, reporting)).collect::<Vec<_>>(),
                "mrr": view.mrr.plain(reporting),
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
            let header = [
                if pt { "linha" } else { "line" },
                if pt { "produto" } else { "product" },
                if pt { "qtd" } else { "qty" },
                if pt { "moeda" } else { "currency" },
                if pt { "preço unit." } else { "unit price" },
                if pt { "desc. %" } else { "disc. %" },
                if pt { "período" } else { "period" },
                if pt { "preço/prazo" } else { "term price" },
                "MRR",
                if pt { "início" } else { "start" },
                if pt { "fim" } else { "end" },
            ]
            .map(String::from)
            .to_vec();
            let section = |lines: &[HeldLine]| {
                let mut rows = vec![header.clone()];
                for h in lines {
                    let dp = h.currency.minor_units();
                    rows.push(vec![
                        h.line_id.clone(),
                        h.product_id.clone(),
                        quantity(h.quantity),
                        h.currency.code().to_string(),
                        price(h.unit_price, dp),
                        quantity(h.discount_pct),
                        h.billing_period.to_string(),
                        format!("{} /{}m", price(h.term_unit_price, dp), h.price_term_months),
                        locale.money(h.mrr, reporting),
                        h.start.to_string(),
                        h.end.map_or("-".into(), |d| d.to_string()),
                    ]);
                }
                table(
                    &rows,
                    &[
                        false, false, true, false, true, true, true, true, true, false, false,
                    ],
                )
            };
            out += &format!("{} {}:\n", if pt { "Itens em" } else { "Held on" }, view.at);
            out += &section(&view.lines);
            if !view.later.is_empty() {
                out += if pt {
                    "Itens que começam depois:\n"
                } else {
                    "Lines that start later:\n"
                };
                out += &section(&view.later);
            }
            out += &format!("MRR: {}\n", locale.money(view.mrr, reporting));
            out
        }
    }
}

/// A quote: its priced lines (each in its own currency), its totals per currency and in the
/// reporting currency, and the MRR before and after.
pub fn render_quote(quote: &Quote, format: Format) -> String {
    let reporting = quote.reporting_total.currency;
    let mrr = |m: Money| m.plain(reporting);
    let day = |d: Option<Date>| d.map(|d| d.to_string());
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
                "currency",
                "line_id",
                "start",
                "end",
            ],
            quote.lines.iter().map(|l| {
                let dp = l.currency.minor_units();
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
                    l.currency.code().to_string(),
                    l.line_id.clone().unwrap_or_default(),
                    l.start.to_string(),
                    day(l.end).unwrap_or_default(),
                ]
            }),
        ),
        Format::Json => {
            let lines: Vec<Value> = quote
                .lines
                .iter()
                .map(|l| {
                    let dp = l.currency.minor_units();
                    json!({
                        "product_id": l.product_id,
                        "line_id": l.line_id,
                        "start": l.start.to_string(),
                        "end": day(l.end),
                        "currency": l.currency.code(),
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
            let totals: Vec<Value> = quote
                .totals
                .iter()
                .map(|t| {
                    json!({
                        "currency": t.currency.code(),
                        "total": fixed(t.total, t.currency.minor_units()),
                    })
                })
                .collect();
            let r = &quote.reporting_total;
            let v = json!({
                "kind": quote.kind,
                "contract": quote.contract,
                "customer_id": quote.customer_id,
                "effective": quote.effective.to_string(),
                "end": day(quote.end),
                "precision": quote.precision.to_string(),
                "lines": lines,
                "totals": totals,
                "total_in_reporting_currency": {
                    "currency": r.currency.code(),
                    "total": fixed(r.total, r.currency.minor_units()),
                    "rates_of": r.rates_of.to_string(),
                },
                "reporting_currency": reporting.code(),
                "mrr_before": mrr(quote.mrr_before),
                "mrr_after": mrr(quote.mrr_after),
                "mrr_after_constant_currency": mrr(quote.mrr_after_constant_currency),
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
                "{what} {} {} ({} {}): {} .. {}, {} {}\n",
                if pt { "do contrato" } else { "of contract" },
                quote.contract,
                if pt { "cliente" } else { "customer" },
                quote.customer_id,
                quote.effective,
                quote.end.map_or(
                    if pt {
                        "sem fim: um mês".into()
                    } else {
                        "evergreen: one month".into()
                    },
                    |d| d.to_string()
                ),
                if pt { "proporção" } else { "proration" },
                quote.precision,
            );
            let mut rows = vec![[
                if pt { "produto" } else { "product" },
                if pt { "linha" } else { "line" },
                if pt { "dias" } else { "days" },
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
            for l in &quote.lines {
                let money = |d: Decimal| locale.money(Money::from_decimal(d), l.currency);
                rows.push(vec![
                    l.product_id.clone(),
                    l.line_id.clone().unwrap_or_else(|| "-".into()),
                    format!(
                        "{} .. {}",
                        l.start,
                        day(l.end).unwrap_or_else(|| "+1m".into())
                    ),
                    quantity(l.prior_quantity),
                    quantity(l.quantity),
                    quantity(l.effective_quantity),
                    format!(
                        "{} /{}m",
                        price(l.unit_price, l.currency.minor_units()),
                        l.price_term_months
                    ),
                    fixed(l.prorate_multiplier.rounded(MULTIPLIER_DP), MULTIPLIER_DP),
                    money(l.prorated_unit_price),
                    money(l.net_total),
                ]);
            }
            let blank = || vec![String::new(); 8];
            for t in &quote.totals {
                let mut row = vec![format!("total {}", t.currency.code())];
                row.extend(blank());
                row.push(locale.money(Money::from_decimal(t.total), t.currency));
                rows.push(row);
            }
            let r = &quote.reporting_total;
            if quote.totals.iter().any(|t| t.currency != r.currency) {
                let mut row = vec![if pt {
                    format!("total em {} (câmbio de {})", r.currency.code(), r.rates_of)
                } else {
                    format!("total in {} (rates of {})", r.currency.code(), r.rates_of)
                }];
                row.extend(blank());
                row.push(locale.money(Money::from_decimal(r.total), r.currency));
                rows.push(row);
            }
            out += &table(
                &rows,
                &[
                    false, false, false, true, true, true, true, true, true, true,
                ],
            );
            out += &format!(
                "MRR ({}): {} -> {}",
                reporting.code(),
                locale.money(quote.mrr_before, reporting),
                locale.money(quote.mrr_after, reporting)
            );
            if quote.mrr_after_constant_currency != quote.mrr_after {
                out += &format!(
                    " ({} {})",
                    locale.money(quote.mrr_after_constant_currency, reporting),
                    if pt {
                        "a câmbio constante"
                    } else {
                        "at constant exchange rates"
                    }
                );
            }
            out += "\n";
            out
        }
    }
}
