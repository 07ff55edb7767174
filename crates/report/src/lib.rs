//! The monthly management report: one self-contained HTML page (no external files, no
//! scripts) with the month's KPIs against the previous month and a year before, the movement
//! chart, the cohort grid as a heat map, and the top customers behind the month's upsell,
//! cross-sell, churn and downsell. Every figure comes from the same functions as the CLI.

use expansa_chart::{movements_svg, ChartError};
use expansa_kpi::{cohorts, kpi_cells, kpis, CohortBy, CohortMetric};
use expansa_ledger::{Book, Decimal, Locale, Money, Month};
use expansa_movements::{customer_movements, ByCustomer, Kind, Query, Report, Rules, KINDS};
use rayon::prelude::*;

/// KPIs shown in the report's table (keys of the KPI report).
const KPIS: [&str; 16] = [
    "mrr",
    "arr",
    "customers",
    "arpa",
    "new_customers",
    "churned_customers",
    "customer_churn_rate",
    "gross_mrr_churn_rate",
    "net_mrr_churn_rate",
    "nrr_12m",
    "grr_12m",
    "expansion_mrr",
    "quick_ratio",
    "ltv",
    "cac",
    "ltv_cac",
];

/// Words of the page in each language.
struct Words {
    title: &'static str,
    kpi: &'static str,
    previous: &'static str,
    year_before: &'static str,
    movements: &'static str,
    cohorts: &'static str,
    cohort: &'static str,
    customers: &'static str,
    top: [&'static str; 4],
    customer: &'static str,
    amount: &'static str,
    none: &'static str,
    footer: &'static str,
}

fn words(locale: Locale) -> Words {
    match locale {
        Locale::PtBr => Words {
            title: "Relatório de receita recorrente",
            kpi: "Indicador",
            previous: "Mês anterior",
            year_before: "Um ano antes",
            movements: "Movimentos de MRR (12 meses)",
            cohorts: "Coortes: MRR em relação ao primeiro mês",
            cohort: "Coorte",
            customers: "Clientes",
            top: [
                "Maiores upsells",
                "Maiores cross-sells",
                "Maiores churns",
                "Maiores downsells",
            ],
            customer: "Cliente",
            amount: "Valor",
            none: "Nenhum no mês.",
            footer: "Gerado pelo expansa. Valores exatos, arredondados só na exibição.",
        },
        Locale::En => Words {
            title: "Recurring revenue report",
            kpi: "KPI",
            previous: "Previous month",
            year_before: "A year before",
            movements: "MRR movements (12 months)",
            cohorts: "Cohorts: MRR against the first month",
            cohort: "Cohort",
            customers: "Customers",
            top: [
                "Top upsells",
                "Top cross-sells",
                "Top churns",
                "Top downsells",
            ],
            customer: "Customer",
            amount: "Amount",
            none: "None this month.",
            footer: "Made by expansa. Exact amounts, rounded only for display.",
        },
    }
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The report of `month` for the lines in `by_customer`, as one HTML page.
pub fn management_report(
    book: &Book,
    by_customer: &ByCustomer,
    month: Month,
    rules: Rules,
    locale: Locale,
) -> Result<String, ChartError> {
    let w = words(locale);
    let c = book.currency();
    let year = Query {
        from: month.offset(-12),
        to: month,
        rules,
    };
    let k = kpis(book, &year, by_customer, None);
    let cells = |i: usize| kpi_cells(&k.months[i], c, locale);
    let (now, prev, before) = (cells(12), cells(11), cells(0));
    let mut html = String::with_capacity(64 << 10);
    html.push_str(&format!(
        "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{} · {}</title>\n<style>{}</style></head><body>\n",
        locale.tag(),
        w.title,
        month,
        STYLE
    ));
    html.push_str(&format!(
        "<h1>{} · {}</h1>\n<p class=\"sub\">{} · {}</p>\n",
        w.title,
        month,
        c.code(),
        rules.name()
    ));

    // KPIs against the previous month and a year before.
    html.push_str(&format!(
        "<section><table class=\"kpis\"><thead><tr><th>{}</th><th>{}</th><th>{} ({})</th><th>{} ({})</th></tr></thead><tbody>\n",
        w.kpi,
        month,
        w.previous,
        month.prev(),
        w.year_before,
        month.offset(-12)
    ));
    for key in KPIS {
        let find = |row: &[(&str, &str, String)]| {
            row.iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, label, v)| (label.to_string(), v.clone()))
                .unwrap_or_default()
        };
        let ((label, v), (_, p), (_, b)) = (find(&now), find(&prev), find(&before));
        html.push_str(&format!(
            "<tr><td>{}</td><td class=\"num strong\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            esc(&label),
            esc(&v),
            esc(&p),
            esc(&b)
        ));
    }
    html.push_str("</tbody></table></section>\n");

    // The movement chart of the last 12 months.
    let report = Report {
        currency: c,
        rules,
        months: k.months[1..].iter().map(|m| m.movements.clone()).collect(),
    };
    html.push_str(&format!(
        "<section><h2>{}</h2><div class=\"chart\">{}</div></section>\n",
        w.movements,
        movements_svg(&report, locale)?
    ));

    // The cohort heat map.
    let grid = cohorts(
        book,
        by_customer,
        month.offset(-11),
        month,
        CohortBy::Month,
        CohortMetric::Mrr,
    );
    let width = grid.rows.first().map_or(0, |r| r.cells.len());
    html.push_str(&format!(
        "<section><h2>{}</h2><table class=\"heat\"><thead><tr><th>{}</th><th>{}</th>",
        w.cohorts, w.cohort, w.customers
    ));
    for i in 0..width {
        html.push_str(&format!("<th>+{i}</th>"));
    }
    html.push_str("</tr></thead><tbody>\n");
    for row in &grid.rows {
        html.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{}</td>",
            row.label, row.customers
        ));
        for cell in &row.cells {
            html.push_str(&match cell {
                Some(v) => format!(
                    "<td class=\"num\" style=\"background:{}\">{}</td>",
                    heat(*v),
                    percent(*v, locale)
                ),
                None => "<td></td>".to_string(),
            });
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody></table></section>\n");

    // Who moved the month.
    let month_only = Query {
        from: month,
        to: month,
        rules,
    };
    let mut totals: Vec<(u32, [Money; KINDS])> = (0..by_customer.customers())
        .into_par_iter()
        .filter_map(|c| {
            let moves = customer_movements(book, &month_only, by_customer, c as u32);
            let mut sums = [Money::ZERO; KINDS];
            for m in &moves {
                sums[m.kind as usize] += m.amount;
            }
            (!moves.is_empty()).then_some((c as u32, sums))
        })
        .collect();
    html.push_str("<section class=\"tops\">\n");
    for (title, kind) in
        w.top
            .iter()
            .zip([Kind::Upsell, Kind::CrossSell, Kind::Churn, Kind::Downsell])
    {
        let gain = matches!(kind, Kind::Upsell | Kind::CrossSell);
        totals.sort_by(|a, b| {
            let (x, y) = (a.1[kind as usize], b.1[kind as usize]);
            let order = if gain { y.cmp(&x) } else { x.cmp(&y) };
            order.then(book.customers.ids.get(a.0).cmp(book.customers.ids.get(b.0)))
        });
        html.push_str(&format!("<div><h2>{title}</h2>"));
        let top: Vec<_> = totals
            .iter()
            .filter(|(_, s)| !s[kind as usize].is_zero())
            .take(10)
            .collect();
        if top.is_empty() {
            html.push_str(&format!("<p>{}</p></div>\n", w.none));
            continue;
        }
        html.push_str(&format!(
            "<table><thead><tr><th>{}</th><th>{}</th></tr></thead><tbody>",
            w.customer, w.amount
        ));
        for (cust, sums) in top {
            let idx = *cust as usize;
            let id = book.customers.ids.get(*cust);
            let name = book.customers.name.get_opt(idx).unwrap_or(id);
            html.push_str(&format!(
                "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
                esc(name),
                esc(&locale.money(sums[kind as usize], c))
            ));
        }
        html.push_str("</tbody></table></div>\n");
    }
    html.push_str("</section>\n");
    if !k.notes.is_empty() {
        html.push_str("<section class=\"notes\"><ul>");
        for note in &k.notes {
            html.push_str(&format!("<li>{}</li>", esc(note)));
        }
        html.push_str("</ul></section>\n");
    }
    html.push_str(&format!("<footer>{}</footer>\n</body></html>\n", w.footer));
    Ok(html)
}

/// A cohort cell as a percentage in the locale.
fn percent(v: Decimal, locale: Locale) -> String {
    let p = (v * Decimal::ONE_HUNDRED)
        .round_dp_with_strategy(0, expansa_ledger::RoundingStrategy::MidpointAwayFromZero);
    format!("{p}%").replace('.', if locale == Locale::PtBr { "," } else { "." })
}

/// The heat-map colour of a cohort cell: green above 100%, red below.
fn heat(v: Decimal) -> String {
    let one = Decimal::ONE;
    let (rgb, strength) = if v >= one {
        ("46,125,50", ((v - one) * Decimal::from(4)).min(one))
    } else {
        ("229,57,53", ((one - v) * Decimal::from(2)).min(one))
    };
    let alpha = Decimal::new(8, 2) + strength * Decimal::new(62, 2);
    format!("rgba({rgb},{})", alpha.round_dp(2))
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Arial,sans-serif;margin:24px 40px;color:#222;max-width:1200px}\
h1{margin:0 0 4px;font-size:26px}h2{font-size:18px;margin:24px 0 8px}.sub{color:#666;margin:0 0 16px}\
table{border-collapse:collapse;font-size:14px}th,td{padding:4px 10px;border-bottom:1px solid #e4e4e4;text-align:left}\
th{background:#f5f5f5}.num{text-align:right;font-variant-numeric:tabular-nums}.strong{font-weight:bold}\
.chart svg{max-width:100%;height:auto}.tops{display:grid;grid-template-columns:repeat(2,1fr);gap:8px 32px}\
.heat td{min-width:48px}.notes{color:#666;font-size:12px}footer{color:#888;font-size:12px;margin-top:24px}";
