//! KPI reports and cohort grids as JSON, CSV and terminal tables.

use crate::{CohortGrid, CohortMetric, KpiMonth, KpiReport};
use expansa_ledger::{fixed, Currency, Decimal, Format, Locale, Money};
use expansa_movements::table;
use serde::Serialize;
use std::collections::BTreeMap;

/// One KPI's value, kept typed until it is printed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KpiValue {
    /// An amount of the reporting currency (printed at its minor unit).
    Money(Option<Money>),
    /// A fraction (0.05 is 5%), printed at [`RATIO_DP`] places.
    Rate(Option<Decimal>),
    /// A ratio (LTV/CAC, the quick ratio), printed at [`RATIO_DP`] places.
    Ratio(Option<Decimal>),
    /// A number of months, printed at [`MONTHS_DP`] places.
    Months(Option<Decimal>),
    /// A count.
    Count(u64),
}

/// Decimal places rates and ratios are printed at.
pub const RATIO_DP: u32 = 4;
/// Decimal places a number of months is printed at.
pub const MONTHS_DP: u32 = 2;

use KpiValue as Value;

impl Value {
    fn plain(self, c: Currency) -> Option<String> {
        match self {
            Value::Money(m) => m.map(|m| m.plain(c)),
            Value::Rate(r) | Value::Ratio(r) => r.map(|r| fixed(r, RATIO_DP)),
            Value::Months(r) => r.map(|r| fixed(r, MONTHS_DP)),
            Value::Count(n) => Some(n.to_string()),
        }
    }

    fn human(self, c: Currency, locale: Locale) -> String {
        let local = |s: String| match locale {
            Locale::PtBr => s.replace('.', ","),
            Locale::En => s,
        };
        match self {
            Value::Money(Some(m)) => locale.money(m, c),
            Value::Rate(Some(r)) => format!("{}%", local(fixed(r * Decimal::ONE_HUNDRED, 2))),
            Value::Ratio(Some(r)) | Value::Months(Some(r)) => local(fixed(r, 2)),
            Value::Count(n) => n.to_string(),
            _ => "—".to_string(),
        }
    }
}

/// The KPIs of a month in the order of the JSON, with their keys and labels.
fn fields(m: &KpiMonth) -> Vec<(&'static str, [&'static str; 2], Value)> {
    use Value::*;
    vec![
        ("mrr", ["MRR", "MRR"], Money(Some(m.mrr))),
        ("arr", ["ARR", "ARR"], Money(Some(m.arr))),
        (
            "customers",
            ["Clientes pagantes", "Paying customers"],
            Count(m.customers),
        ),
        ("arpa", ["ARPA", "ARPA"], Money(m.arpa)),
        (
            "new_customers",
            ["Clientes novos", "New customers"],
            Count(m.new_customers),
        ),
        (
            "churned_customers",
            ["Clientes perdidos", "Churned customers"],
            Count(m.churned_customers),
        ),
        (
            "customer_churn_rate",
            ["Churn de clientes", "Customer churn rate"],
            Rate(m.customer_churn_rate),
        ),
        (
            "gross_mrr_churn_rate",
            ["Churn bruto de MRR", "Gross MRR churn rate"],
            Rate(m.gross_mrr_churn_rate),
        ),
        (
            "net_mrr_churn_rate",
            ["Churn líquido de MRR", "Net MRR churn rate"],
            Rate(m.net_mrr_churn_rate),
        ),
        ("nrr", ["NRR (mês)", "NRR (month)"], Rate(m.nrr)),
        ("grr", ["GRR (mês)", "GRR (month)"], Rate(m.grr)),
        (
            "nrr_12m",
            ["NRR (12 meses)", "NRR (12 months)"],
            Rate(m.nrr_12m),
        ),
        (
            "grr_12m",
            ["GRR (12 meses)", "GRR (12 months)"],
            Rate(m.grr_12m),
        ),
        (
            "expansion_rate",
            ["Taxa de expansão", "Expansion rate"],
            Rate(m.expansion_rate),
        ),
        (
            "quick_ratio",
            ["Quick ratio", "Quick ratio"],
            Ratio(m.quick_ratio),
        ),
        ("ltv", ["LTV", "LTV"], Money(m.ltv)),
        ("cac", ["CAC", "CAC"], Money(m.cac)),
        ("ltv_cac", ["LTV/CAC", "LTV/CAC"], Ratio(m.ltv_cac)),
        (
            "cac_payback_months",
            ["Payback do CAC (meses)", "CAC payback (months)"],
            Months(m.cac_payback_months),
        ),
        (
            "avg_upsell",
            ["Upsell médio", "Average upsell"],
            Money(m.avg_upsell),
        ),
        (
            "avg_cross_sell",
            ["Cross-sell médio", "Average cross-sell"],
            Money(m.avg_cross_sell),
        ),
        (
            "upsell_customers",
            ["Clientes com upsell", "Upsell customers"],
            Count(m.upsell_customers),
        ),
        (
            "cross_sell_customers",
            ["Clientes com cross-sell", "Cross-sell customers"],
            Count(m.cross_sell_customers),
        ),
        (
            "expansion_mrr",
            ["MRR de expansão", "Expansion MRR"],
            Money(Some(m.expansion_mrr)),
        ),
        (
            "offer_conversion_rate",
            ["Conversão de ofertas", "Offer conversion rate"],
            Rate(m.offer_conversion_rate),
        ),
        // Added after the first version: last, so that CSV readers by position keep working.
        (
            "contraction_rate",
            ["Taxa de contração", "Contraction rate"],
            Rate(m.contraction_rate),
        ),
        (
            "renewal_contracts",
            ["Contratos em renovação", "Contracts up for renewal"],
            Count(m.renewal_contracts),
        ),
        (
            "renewal_arr",
            ["ARR em renovação", "ARR up for renewal"],
            Money(Some(m.renewal_arr)),
        ),
        (
            "renewed_arr",
            [
                "ARR renovado (com expansão)",
                "Renewed ARR (with expansion)",
            ],
            Money(Some(m.renewed_arr)),
        ),
        (
            "renewed_arr_gross",
            [
                "ARR renovado (sem expansão)",
                "Renewed ARR (without expansion)",
            ],
            Money(Some(m.renewed_arr_gross)),
        ),
        (
            "gross_renewal_rate",
            ["Taxa de renovação bruta", "Gross renewal rate"],
            Rate(m.gross_renewal_rate),
        ),
        (
            "net_renewal_rate",
            ["Taxa de renovação líquida", "Net renewal rate"],
            Rate(m.net_renewal_rate),
        ),
    ]
}

/// Every KPI of a month, typed, with its JSON key, in the JSON's order (`cac_by_channel` apart:
/// [`KpiMonth::cac_by_channel`]).
pub fn kpi_values(m: &KpiMonth) -> Vec<(&'static str, KpiValue)> {
    fields(m).into_iter().map(|(key, _, v)| (key, v)).collect()
}

/// Every KPI of a month for people: (JSON key, label in `locale`, value formatted in `locale`).
pub fn kpi_cells(
    m: &KpiMonth,
    currency: Currency,
    locale: Locale,
) -> Vec<(&'static str, &'static str, String)> {
    let lang = usize::from(locale == Locale::En);
    fields(m)
        .into_iter()
        .map(|(key, label, v)| (key, label[lang], v.human(currency, locale)))
        .collect()
}

#[derive(Serialize)]
struct JsonReport {
    currency: String,
    rules: &'static str,
    scale: u32,
    months: Vec<serde_json::Map<String, serde_json::Value>>,
    notes: Vec<String>,
}

/// The KPI report in `format`.
pub fn render_kpis(r: &KpiReport, format: Format) -> String {
    let c = r.currency;
    match format {
        Format::Json => {
            let months = r
                .months
                .iter()
                .map(|m| {
                    let mut o = serde_json::Map::new();
                    o.insert("month".into(), m.month.to_string().into());
                    for (key, _, v) in fields(m) {
                        let value = match v {
                            Value::Count(n) => n.into(),
                            other => other.plain(c).map_or(serde_json::Value::Null, Into::into),
                        };
                        o.insert(key.into(), value);
                    }
                    let by_channel: BTreeMap<&str, Option<String>> = m
                        .cac_by_channel
                        .iter()
                        .map(|(ch, cac)| (ch.as_str(), cac.map(|x| x.plain(c))))
                        .collect();
                    o.insert("cac_by_channel".into(), serde_json::json!(by_channel));
                    o
                })
                .collect();
            let doc = JsonReport {
                currency: c.code().to_string(),
                rules: r.rules.name(),
                scale: expansa_ledger::SCALE,
                months,
                notes: r.notes.clone(),
            };
            serde_json::to_string(&doc).expect("plain data serializes") + "\n"
        }
        Format::Csv => {
            let Some(first) = r.months.first() else {
                return String::new();
            };
            let keys: Vec<&str> = fields(first).iter().map(|(k, _, _)| *k).collect();
            let mut out = format!("month,{}\n", keys.join(","));
            for m in &r.months {
                let cells: Vec<String> = fields(m)
                    .into_iter()
                    .map(|(_, _, v)| v.plain(c).unwrap_or_default())
                    .collect();
                out.push_str(&format!("{},{}\n", m.month, cells.join(",")));
            }
            out
        }
        Format::Table(locale) => {
            let Some(first) = r.months.first() else {
                return String::new();
            };
            let lang = usize::from(locale == Locale::En);
            let head = ["KPI", "KPI"][lang].to_string();
            let mut rows = vec![std::iter::once(head)
                .chain(r.months.iter().map(|m| m.month.to_string()))
                .collect::<Vec<_>>()];
            for (i, (_, label, _)) in fields(first).iter().enumerate() {
                let mut row = vec![label[lang].to_string()];
                row.extend(r.months.iter().map(|m| fields(m)[i].2.human(c, locale)));
                rows.push(row);
            }
            let mut right = vec![true; r.months.len() + 1];
            right[0] = false;
            let mut out = format!("{} · {} · {}\n\n", c.code(), r.rules.name(), locale);
            out.push_str(&table(&rows, &right));
            for note in &r.notes {
                out.push_str(&format!("\n* {note}"));
            }
            if !r.notes.is_empty() {
                out.push('\n');
            }
            out
        }
    }
}

/// A cohort grid in `format` (cells as fractions: `0.9500`; in tables, percentages).
pub fn render_cohorts(g: &CohortGrid, currency: Currency, format: Format) -> String {
    let base = |b: Decimal| match g.metric {
        CohortMetric::Mrr => Money::from_decimal(b).plain(currency),
        CohortMetric::Customers => b.to_string(),
    };
    let width = g.rows.first().map_or(0, |r| r.cells.len());
    match format {
        Format::Json => {
            let rows: Vec<serde_json::Value> = g
                .rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "cohort": r.label,
                        "customers": r.customers,
                        "base": base(r.base),
                        "cells": r.cells.iter().map(|c| c.map(|c| fixed(c, 4))).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let by = match g.by {
                crate::CohortBy::Month => "month",
                crate::CohortBy::Quarter => "quarter",
            };
            let metric = match g.metric {
                CohortMetric::Mrr => "mrr",
                CohortMetric::Customers => "customers",
            };
            serde_json::json!({"by": by, "metric": metric, "cohorts": rows}).to_string() + "\n"
        }
        Format::Csv => {
            let periods: Vec<String> = (0..width).map(|k| k.to_string()).collect();
            let mut out = format!("cohort,customers,base,{}\n", periods.join(","));
            for r in &g.rows {
                let cells: Vec<String> = (0..width)
                    .map(|k| {
                        r.cells
                            .get(k)
                            .copied()
                            .flatten()
                            .map(|c| fixed(c, 4))
                            .unwrap_or_default()
                    })
                    .collect();
                out.push_str(&format!(
                    "{},{},{},{}\n",
                    r.label,
                    r.customers,
                    base(r.base),
                    cells.join(",")
                ));
            }
            out
        }
        Format::Table(locale) => {
            let head = match locale {
                Locale::PtBr => ["Coorte", "Clientes", "Base"],
                Locale::En => ["Cohort", "Customers", "Base"],
            };
            let mut rows = vec![head
                .iter()
                .map(|s| s.to_string())
                .chain((0..width).map(|k| format!("+{k}")))
                .collect::<Vec<_>>()];
            for r in &g.rows {
                let mut row = vec![
                    r.label.clone(),
                    r.customers.to_string(),
                    match g.metric {
                        CohortMetric::Mrr => locale.money(Money::from_decimal(r.base), currency),
                        CohortMetric::Customers => r.base.to_string(),
                    },
                ];
                row.extend((0..width).map(|k| match r.cells.get(k).copied().flatten() {
                    Some(c) => Value::Rate(Some(c)).human(currency, locale),
                    None => String::new(),
                }));
                rows.push(row);
            }
            let mut right = vec![true; width + 3];
            right[0] = false;
            table(&rows, &right)
        }
    }
}
