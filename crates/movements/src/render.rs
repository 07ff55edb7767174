//! One report, rendered several ways: spec JSON, CSV, a terminal table, and the trail.

use crate::engine::{Kind, MonthTotals, Movement, Report};
use expansa_ledger::{Book, Currency, Format, Locale, Money};
use serde::Serialize;

#[derive(Serialize)]
struct JsonMonth {
    month: String,
    mrr_start: String,
    new: String,
    cross_sell: String,
    upsell: String,
    reactivation: String,
    downsell: String,
    churn: String,
    fx: String,
    entering_segment: String,
    leaving_segment: String,
    mrr_end: String,
    customers_start: u64,
    customers_end: u64,
}

#[derive(Serialize)]
struct JsonReport {
    currency: String,
    rules: &'static str,
    scale: u32,
    months: Vec<JsonMonth>,
}

fn json_month(m: &MonthTotals, c: Currency) -> JsonMonth {
    let a = |k: Kind| m.get(k).plain(c);
    JsonMonth {
        month: m.month.to_string(),
        mrr_start: m.mrr_start.plain(c),
        new: a(Kind::New),
        cross_sell: a(Kind::CrossSell),
        upsell: a(Kind::Upsell),
        reactivation: a(Kind::Reactivation),
        downsell: a(Kind::Downsell),
        churn: a(Kind::Churn),
        fx: a(Kind::Fx),
        entering_segment: a(Kind::EnteringSegment),
        leaving_segment: a(Kind::LeavingSegment),
        mrr_end: m.mrr_end.plain(c),
        customers_start: m.customers_start,
        customers_end: m.customers_end,
    }
}

/// The movement report as the JSON of `shared/spec/data-format.md`.
pub fn render_json(report: &Report) -> String {
    let c = report.currency;
    let doc = JsonReport {
        currency: c.code().to_string(),
        rules: report.rules.name(),
        scale: expansa_ledger::SCALE,
        months: report.months.iter().map(|m| json_month(m, c)).collect(),
    };
    serde_json::to_string(&doc).expect("plain data serializes")
}

/// The columns of the first version first, in their places; what was added since at the end,
/// so that a reader by position keeps working.
const CSV_HEADER: &str = "month,mrr_start,new,cross_sell,upsell,reactivation,downsell,churn,mrr_end,customers_start,customers_end,fx,entering_segment,leaving_segment";

/// The kinds of the first version of the CSV, in its column order.
const FIRST_KINDS: usize = 6;

/// The movement report as CSV, one row per month, amounts as plain decimals.
pub fn render_csv(report: &Report) -> String {
    let c = report.currency;
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for m in &report.months {
        let mut cells = vec![m.month.to_string(), m.mrr_start.plain(c)];
        let (first, added) = Kind::ALL.split_at(FIRST_KINDS);
        cells.extend(first.iter().map(|&k| m.get(k).plain(c)));
        cells.push(m.mrr_end.plain(c));
        cells.push(m.customers_start.to_string());
        cells.push(m.customers_end.to_string());
        cells.extend(added.iter().map(|&k| m.get(k).plain(c)));
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// Column titles of the table, in the locale's language: month, MRR start, the kinds (in
/// [`Kind::ALL`] order), MRR end, customers.
fn titles(locale: Locale) -> Vec<&'static str> {
    let (month, start, end, customers) = match locale {
        Locale::PtBr => ("Mês", "MRR inicial", "MRR final", "Clientes"),
        Locale::En => ("Month", "MRR start", "MRR end", "Customers"),
    };
    let mut out = vec![month, start];
    out.extend(Kind::ALL.iter().map(|&k| kind_label(k, locale)));
    out.extend([end, customers]);
    out
}

/// Kind names for people.
pub fn kind_label(kind: Kind, locale: Locale) -> &'static str {
    match (locale, kind) {
        (Locale::PtBr, Kind::New) => "Novo",
        (Locale::PtBr, Kind::Reactivation) => "Reativação",
        (Locale::En, Kind::New) => "New",
        (Locale::En, Kind::Reactivation) => "Reactivation",
        (_, Kind::CrossSell) => "Cross-sell",
        (_, Kind::Upsell) => "Upsell",
        (_, Kind::Downsell) => "Downsell",
        (_, Kind::Churn) => "Churn",
        (Locale::PtBr, Kind::Fx) => "Câmbio",
        (Locale::En, Kind::Fx) => "FX",
        (Locale::PtBr, Kind::EnteringSegment) => "Entrada no segmento",
        (Locale::En, Kind::EnteringSegment) => "Entering segment",
        (Locale::PtBr, Kind::LeavingSegment) => "Saída do segmento",
        (Locale::En, Kind::LeavingSegment) => "Leaving segment",
    }
}

/// Lays out rows of cells for a terminal, the first row as the header; `right[i]` says whether
/// column `i` is right-aligned (numbers).
pub fn table(rows: &[Vec<String>], right: &[bool]) -> String {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, &w))| {
                let pad = " ".repeat(w - cell.chars().count());
                if right[i] {
                    format!("{pad}{cell}")
                } else {
                    format!("{cell}{pad}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
            out.push_str(&rule.join("  "));
            out.push('\n');
        }
    }
    out
}

/// The movement report as a table for a terminal, money in the locale's format. The segment
/// columns show only when a filter moved MRR in or out (they are zero otherwise).
pub fn render_table(report: &Report, locale: Locale) -> String {
    let c = report.currency;
    let money = |m: Money| locale.money(m, c);
    let segments = [Kind::EnteringSegment, Kind::LeavingSegment];
    let shown =
        |k: Kind| !segments.contains(&k) || report.months.iter().any(|m| !m.get(k).is_zero());
    let kinds: Vec<Kind> = Kind::ALL.into_iter().filter(|&k| shown(k)).collect();
    let mut head: Vec<String> = titles(locale).iter().map(|s| s.to_string()).collect();
    for (i, k) in Kind::ALL.iter().enumerate().rev() {
        if !shown(*k) {
            head.remove(2 + i);
        }
    }
    let mut rows = vec![head];
    for m in &report.months {
        let mut row = vec![m.month.to_string(), money(m.mrr_start)];
        row.extend(kinds.iter().map(|&k| money(m.get(k))));
        row.push(money(m.mrr_end));
        row.push(m.customers_end.to_string());
        rows.push(row);
    }
    let mut out = format!("{} · {} · {}\n\n", c.code(), report.rules.name(), locale);
    let mut right = vec![true; rows[0].len()];
    right[0] = false;
    out.push_str(&table(&rows, &right));
    out
}

#[derive(Serialize)]
struct JsonMovement {
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<String>,
    month: String,
    kind: &'static str,
    amount: String,
    lines: Vec<String>,
}

#[derive(Serialize)]
struct JsonTrail {
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<String>,
    currency: String,
    movements: Vec<JsonMovement>,
}

/// One customer's trail: every movement with the line ids behind it.
pub fn render_trail(book: &Book, customer: &str, trail: &[Movement], format: Format) -> String {
    let title = match book
        .customers
        .ids
        .find(customer)
        .and_then(|c| book.customers.name.get_opt(c as usize))
    {
        Some(name) => format!("{customer} · {name}"),
        None => customer.to_string(),
    };
    render_movement_list(book, Some(customer), &title, trail, format)
}

/// Every customer's movements (of a month and kind, say): who and which lines are behind a
/// figure of the report.
pub fn render_detail(book: &Book, movements: &[Movement], format: Format) -> String {
    let title = match format {
        Format::Table(Locale::PtBr) => "Movimentos por cliente",
        _ => "Movements by customer",
    };
    render_movement_list(book, None, title, movements, format)
}

/// A list of movements; `customer` when they are all one customer's (its trail).
fn render_movement_list(
    book: &Book,
    customer: Option<&str>,
    title: &str,
    movements: &[Movement],
    format: Format,
) -> String {
    let c = book.currency();
    let ids = |m: &Movement| -> Vec<String> {
        m.lines
            .iter()
            .map(|&l| book.lines.ids.get(l).to_string())
            .collect()
    };
    let who = |m: &Movement| book.customers.ids.get(m.customer).to_string();
    match format {
        Format::Json => serde_json::to_string(&JsonTrail {
            customer: customer.map(str::to_string),
            currency: c.code().to_string(),
            movements: movements
                .iter()
                .map(|m| JsonMovement {
                    customer: customer.is_none().then(|| who(m)),
                    month: m.month.to_string(),
                    kind: m.kind.key(),
                    amount: m.amount.plain(c),
                    lines: ids(m),
                })
                .collect(),
        })
        .expect("plain data serializes"),
        Format::Csv => {
            let mut out = String::from("customer,month,kind,amount,lines\n");
            for m in movements {
                out.push_str(&format!(
                    "{},{},{},{},{}\n",
                    csv_cell(&who(m)),
                    m.month,
                    m.kind.key(),
                    m.amount.plain(c),
                    csv_cell(&ids(m).join(" "))
                ));
            }
            out
        }
        Format::Table(locale) => {
            let head = match locale {
                Locale::PtBr => ["Cliente", "Mês", "Movimento", "Valor", "Linhas"],
                Locale::En => ["Customer", "Month", "Movement", "Amount", "Lines"],
            };
            let skip = usize::from(customer.is_some());
            let mut rows = vec![head[skip..]
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()];
            for m in movements {
                let mut row = vec![
                    who(m),
                    m.month.to_string(),
                    kind_label(m.kind, locale).to_string(),
                    locale.money(m.amount, c),
                    ids(m).join(" "),
                ];
                row.drain(..skip);
                rows.push(row);
            }
            let total: Money = movements.iter().map(|m| m.amount).sum();
            let mut last = vec![String::new(); 5 - skip];
            last[0] = "Total".into();
            last[3 - skip] = locale.money(total, c);
            rows.push(last);
            let right = [false, false, false, true, false];
            format!("{title}\n\n{}", table(&rows, &right[skip..]))
        }
    }
}

fn csv_cell(s: &str) -> String {
    let mut out = String::new();
    expansa_ledger::csv_field(&mut out, s);
    out
}
