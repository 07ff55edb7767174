//! Rules, opportunities, offer reports and evaluations as JSON, CSV and terminal tables.
//!
//! Ratios are printed with 10 decimal places in JSON and CSV (the counts beside them are the
//! exact figures), and as percentages with 2 places in tables; money is rounded to the
//! currency's minor unit only here.

use crate::{
    Evaluation, Mined, OfferGroup, OfferReport, Opportunities, OpportunityKind, Recommender, Why,
    MEASURES, MEASURE_NAMES,
};
use expansa_ledger::{
    csv_field, fixed, Book, Currency, Decimal, Format, Locale, Money, OfferOutcome,
};
use expansa_movements::table;
use rayon::prelude::*;
use serde_json::{json, Value};

const PLACES: u32 = 10;

fn ratio(d: Decimal) -> String {
    fixed(d, PLACES)
}

fn percent(d: Decimal, locale: Locale) -> String {
    local(fixed(d * Decimal::ONE_HUNDRED, 2), locale) + "%"
}

fn local(s: String, locale: Locale) -> String {
    match locale {
        Locale::PtBr => s.replace('.', ","),
        Locale::En => s,
    }
}

fn say(locale: Locale, pt: &'static str, en: &'static str) -> &'static str {
    match locale {
        Locale::PtBr => pt,
        Locale::En => en,
    }
}

fn csv_line(cells: &[String]) -> String {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    w.write_record(cells).expect("writing to memory");
    String::from_utf8(w.into_inner().expect("writing to memory")).expect("cells are UTF-8")
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("JSON values serialize") + "\n"
}

/// Writes `num / den` rounded half away from zero to `places` decimals, from the exact
/// integers (no intermediate rounding); `None` (nothing written) when `den` is zero or the
/// figures overflow.
pub fn write_quotient(out: &mut String, num: i128, den: u128, places: u32) -> Option<()> {
    use std::fmt::Write;
    if den == 0 {
        return None;
    }
    let scale = 10u128.pow(places);
    let mag = num.unsigned_abs().checked_mul(scale)?.checked_mul(2)?;
    let q = (mag / den).div_ceil(2);
    let (int, frac) = (q / scale, q % scale);
    if num < 0 && q != 0 {
        out.push('-');
    }
    let _ = if places == 0 {
        write!(out, "{int}")
    } else {
        write!(out, "{int}.{frac:0width$}", width = places as usize)
    };
    Some(())
}

/// Writes the five measures of a rule ([`crate::MEASURE_NAMES`] order) as exact quotients with
/// [`PLACES`] decimals, the `k`-th after `prefix(k)` and wrapped in `quote`; an infinite
/// conviction is written as `none`.
fn write_measures(
    out: &mut String,
    r: &crate::Rule,
    n: u64,
    prefix: impl Fn(usize) -> String,
    quote: &str,
    none: &str,
) {
    for (k, (num, den)) in r.fractions(n).into_iter().enumerate() {
        out.push_str(&prefix(k));
        let mark = out.len();
        out.push_str(quote);
        if write_quotient(out, num, den, PLACES).is_some() {
            out.push_str(quote);
        } else {
            out.truncate(mark);
            out.push_str(none);
        }
    }
}

/// Writes `items` joined by `sep`, each through `item`.
fn write_joined<'n>(
    out: &mut String,
    items: impl Iterator<Item = &'n str>,
    sep: &str,
    item: impl Fn(&mut String, &str),
) {
    for (k, s) in items.enumerate() {
        if k > 0 {
            out.push_str(sep);
        }
        item(out, s);
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("strings serialize"));
}

/// Renders items in parallel chunks and joins them in order.
fn par_lines<T: Sync>(items: &[T], line: impl Fn(&T, &mut String) + Sync) -> String {
    items
        .par_chunks(4096)
        .map(|chunk| {
            let mut out = String::with_capacity(chunk.len() * 160);
            for item in chunk {
                line(item, &mut out);
            }
            out
        })
        .collect::<Vec<String>>()
        .concat()
}

/// Association rules (and, with `with_itemsets`, the frequent itemsets in JSON);
/// `names` are the item names.
pub fn render_rules(
    mined: &Mined,
    names: &[String],
    with_itemsets: bool,
    format: Format,
) -> String {
    use std::fmt::Write;
    let n = mined.transactions;
    let antecedent = |r: &crate::Rule| -> Vec<&str> {
        r.antecedent
            .iter()
            .map(|&i| names[i as usize].as_str())
            .collect()
    };
    let names_of = |items: &[u32]| {
        items
            .iter()
            .map(|&i| names[i as usize].as_str())
            .collect::<Vec<_>>()
    };
    match format {
        Format::Json => {
            let mut out = format!(
                "{{\n  \"transactions\": {n},\n  \"min_count\": {},\n  \"itemset_count\": {},\n",
                mined.min_count,
                mined.itemsets.len()
            );
            if with_itemsets {
                out += "  \"itemsets\": [\n";
                let body = par_lines(&mined.itemsets, |s, out| {
                    out.push_str("    {\"items\": [");
                    write_joined(out, names_of(&s.items).into_iter(), ", ", json_string);
                    let _ = writeln!(out, "], \"count\": {}}},", s.count);
                });
                out += body.strip_suffix(",\n").unwrap_or(&body);
                out += "\n  ],\n";
            }
            out += "  \"rules\": [\n";
            let body = par_lines(&mined.rules, |r, out| {
                out.push_str("    {\"antecedent\": [");
                write_joined(out, names_of(&r.antecedent).into_iter(), ", ", json_string);
                out.push_str("], \"consequent\": ");
                json_string(out, &names[r.consequent as usize]);
                let _ = write!(
                    out,
                    ", \"count\": {}, \"antecedent_count\": {}, \"consequent_count\": {}",
                    r.count, r.antecedent_count, r.consequent_count
                );
                let key = |k: usize| format!(", \"{}\": ", MEASURE_NAMES[k]);
                write_measures(out, r, n, key, "\"", "null");
                out.push_str("},\n");
            });
            out += body.strip_suffix(",\n").unwrap_or(&body);
            out += "\n  ]\n}\n";
            out
        }
        Format::Csv => {
            let mut out = String::from("antecedent,consequent,count,antecedent_count,consequent_count,support,confidence,lift,leverage,conviction\n");
            out += &par_lines(&mined.rules, |r, out| {
                let left = names_of(&r.antecedent);
                if left.iter().any(|s| s.contains([',', '"', '\n', '\r'])) {
                    csv_field(out, &left.join(" + "));
                } else {
                    write_joined(out, left.into_iter(), " + ", |o, s| o.push_str(s));
                }
                out.push(',');
                csv_field(out, &names[r.consequent as usize]);
                let _ = write!(
                    out,
                    ",{},{},{}",
                    r.count, r.antecedent_count, r.consequent_count
                );
                write_measures(out, r, n, |_| ",".into(), "", "");
                out.push('\n');
            });
            out
        }
        Format::Table(l) => {
            let mut rows = vec![vec![
                say(l, "Quem tem", "Who holds").to_string(),
                say(l, "Também tem", "Also holds").to_string(),
                say(l, "Clientes", "Customers").to_string(),
                say(l, "Suporte", "Support").to_string(),
                say(l, "Confiança", "Confidence").to_string(),
                "Lift".to_string(),
            ]];
            for r in &mined.rules {
                rows.push(vec![
                    antecedent(r).join(" + "),
                    names[r.consequent as usize].clone(),
                    format!("{}/{}", r.count, r.antecedent_count),
                    percent(r.support(n), l),
                    percent(r.confidence(), l),
                    local(fixed(r.lift(n), 2), l),
                ]);
            }
            let head = format!(
                "{} {n} · {} {} · {} {}\n",
                say(
                    l,
                    "Transações (clientes com produtos):",
                    "Transactions (customers holding products):"
                ),
                say(l, "suporte mínimo", "minimum support"),
                mined.min_count,
                mined.rules.len(),
                say(l, "regras", "rules"),
            );
            head + &table(&rows, &[false, false, true, true, true, true])
        }
    }
}

fn opportunity_kind(kind: OpportunityKind) -> &'static str {
    match kind {
        OpportunityKind::Upsell => "upsell",
        OpportunityKind::CrossSell => "cross_sell",
    }
}

fn why_json(book: &Book, why: &Why) -> Value {
    let products = &book.products.ids;
    match why {
        Why::Rule {
            antecedent,
            count,
            antecedent_count,
            lift,
        } => json!({
            "type": "rule",
            "antecedent": antecedent.iter().map(|&p| products.get(p)).collect::<Vec<_>>(),
            "count": count,
            "antecedent_count": antecedent_count,
            "lift": ratio(*lift),
        }),
        Why::Popularity {
            holders,
            transactions,
        } => json!({"type": "popularity", "holders": holders, "transactions": transactions}),
        Why::Usage {
            months,
            offers_accepted,
            offers_decided,
        } => json!({
            "type": "usage",
            "months": months.iter().map(|u| json!({
                "month": u.month.to_string(),
                "used": u.used.normalize().to_string(),
                "included": u.included.normalize().to_string(),
            })).collect::<Vec<_>>(),
            "offers_accepted": offers_accepted,
            "offers_decided": offers_decided,
        }),
    }
}

fn why_text(book: &Book, why: &Why, locale: Locale) -> String {
    let products = &book.products.ids;
    match why {
        Why::Rule {
            antecedent,
            count,
            antecedent_count,
            ..
        } => {
            let a: Vec<&str> = antecedent.iter().map(|&p| products.get(p)).collect();
            format!(
                "{count}/{antecedent_count} {} {}",
                say(locale, "dos que têm", "of those holding"),
                a.join(" + ")
            )
        }
        Why::Popularity {
            holders,
            transactions,
        } => format!(
            "{holders}/{transactions} {}",
            say(locale, "clientes têm", "customers hold it")
        ),
        Why::Usage { months, .. } => {
            let shares: Vec<String> = months
                .iter()
                .map(|u| local(fixed(u.used / u.included * Decimal::ONE_HUNDRED, 0), locale) + "%")
                .collect();
            format!("{} {}", say(locale, "uso", "usage"), shares.join(" "))
        }
    }
}

/// Ranked opportunities.
pub fn render_opportunities(book: &Book, o: &Opportunities, format: Format) -> String {
    let c = book.currency();
    let customers = &book.customers;
    let products = &book.products.ids;
    let money = |m: Money| m.plain(c);
    match format {
        Format::Json => pretty(&json!({
            "at": o.at.to_string(),
            "currency": c.code(),
            "transactions": o.transactions,
            "rules": o.rules,
            "skipped": {"downsell": o.skipped_downsell, "open_offer": o.skipped_open_offer},
            "found": o.found,
            "opportunities": o.list.iter().enumerate().map(|(i, x)| json!({
                "rank": i + 1,
                "customer_id": customers.ids.get(x.customer),
                "customer_name": customers.name.get_opt(x.customer as usize),
                "kind": opportunity_kind(x.kind),
                "product_id": products.get(x.product),
                "from_product_id": x.from_product.map(|p| products.get(p)),
                "probability": ratio(x.probability),
                "gain": money(x.gain),
                "expected_gain": money(x.expected_gain),
                "customer_mrr": money(x.customer_mrr),
                "price_source": x.price_source,
                "why": why_json(book, &x.why),
            })).collect::<Vec<_>>(),
        })),
        Format::Csv => {
            let mut out = csv_line(
                &[
                    "rank",
                    "customer_id",
                    "kind",
                    "product_id",
                    "from_product_id",
                    "probability",
                    "gain",
                    "expected_gain",
                    "customer_mrr",
                    "price_source",
                    "why",
                ]
                .map(String::from),
            );
            for (i, x) in o.list.iter().enumerate() {
                out += &csv_line(&[
                    (i + 1).to_string(),
                    customers.ids.get(x.customer).to_string(),
                    opportunity_kind(x.kind).to_string(),
                    products.get(x.product).to_string(),
                    x.from_product
                        .map(|p| products.get(p).to_string())
                        .unwrap_or_default(),
                    ratio(x.probability),
                    money(x.gain),
                    money(x.expected_gain),
                    money(x.customer_mrr),
                    serde_json::to_value(x.price_source)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default(),
                    why_text(book, &x.why, Locale::En),
                ]);
            }
            out
        }
        Format::Table(l) => {
            let mut rows = vec![[
                "#",
                say(l, "Cliente", "Customer"),
                say(l, "Tipo", "Kind"),
                say(l, "Produto", "Product"),
                say(l, "Probabilidade", "Probability"),
                say(l, "Ganho MRR", "MRR gain"),
                say(l, "Ganho esperado", "Expected gain"),
                say(l, "MRR do cliente", "Customer MRR"),
                say(l, "Por quê", "Why"),
            ]
            .map(String::from)
            .to_vec()];
            for (i, x) in o.list.iter().enumerate() {
                let product = match x.from_product {
                    Some(from) => format!("{} → {}", products.get(from), products.get(x.product)),
                    None => products.get(x.product).to_string(),
                };
                rows.push(vec![
                    (i + 1).to_string(),
                    customers.ids.get(x.customer).to_string(),
                    match x.kind {
                        OpportunityKind::Upsell => "Upsell".into(),
                        OpportunityKind::CrossSell => "Cross-sell".into(),
                    },
                    product,
                    percent(x.probability, l),
                    l.money(x.gain, c),
                    l.money(x.expected_gain, c),
                    l.money(x.customer_mrr, c),
                    why_text(book, &x.why, l),
                ]);
            }
            let head = format!(
                "{} {} {} · {} {} {}\n",
                o.found,
                say(l, "oportunidades em", "opportunities on"),
                o.at,
                say(l, "mostrando", "showing"),
                o.list.len(),
                say(
                    l,
                    "(maior ganho esperado primeiro)",
                    "(highest expected gain first)"
                ),
            );
            head + &table(
                &rows,
                &[true, false, false, false, true, true, true, true, false],
            )
        }
    }
}

fn group_json(g: &OfferGroup, c: Currency) -> Value {
    json!({
        "key": g.key,
        "made": g.made,
        "accepted": g.accepted,
        "declined": g.declined,
        "open": g.open,
        "conversion_rate": g.conversion_rate().map(ratio),
        "mrr_gained": g.mrr_gained.plain(c),
        "average_gain": g.average_gain().map(|m| m.plain(c)),
        "forecast": g.forecast.plain(c),
    })
}

/// The offer conversion report.
pub fn render_offers(r: &OfferReport, c: Currency, format: Format) -> String {
    let sections: [(&str, [&str; 2], &[OfferGroup]); 5] = [
        ("total", ["Total", "Total"], std::slice::from_ref(&r.total)),
        ("month", ["Mês", "Month"], &r.by_month),
        ("kind", ["Tipo", "Kind"], &r.by_kind),
        ("product", ["Produto", "Product"], &r.by_product),
        ("segment", ["Segmento", "Segment"], &r.by_segment),
    ];
    match format {
        Format::Json => pretty(&json!({
            "from": r.from.to_string(),
            "to": r.to.to_string(),
            "currency": c.code(),
            "total": group_json(&r.total, c),
            "by_month": r.by_month.iter().map(|g| group_json(g, c)).collect::<Vec<_>>(),
            "by_kind": r.by_kind.iter().map(|g| group_json(g, c)).collect::<Vec<_>>(),
            "by_product": r.by_product.iter().map(|g| group_json(g, c)).collect::<Vec<_>>(),
            "by_segment": r.by_segment.iter().map(|g| group_json(g, c)).collect::<Vec<_>>(),
            "offers": r.offers.iter().map(|o| json!({
                "id": o.id,
                "offered_on": o.offered_on.to_string(),
                "customer_id": o.customer_id,
                "product_id": o.product_id,
                "kind": crate::kind_key(o.kind),
                "outcome": o.outcome.map(|x| match x {
                    OfferOutcome::Accepted => "accepted",
                    OfferOutcome::Declined => "declined",
                }),
                "decided_on": o.decided_on.map(|d| d.to_string()),
                "line_id": o.line,
                "gain": o.gain.plain(c),
                "forecast": o.forecast.plain(c),
            })).collect::<Vec<_>>(),
        })),
        Format::Csv => {
            let mut out = csv_line(
                &[
                    "dimension",
                    "key",
                    "made",
                    "accepted",
                    "declined",
                    "open",
                    "conversion_rate",
                    "mrr_gained",
                    "average_gain",
                    "forecast",
                ]
                .map(String::from),
            );
            for (dimension, _, groups) in sections {
                for g in groups {
                    out += &csv_line(&[
                        dimension.to_string(),
                        g.key.clone(),
                        g.made.to_string(),
                        g.accepted.to_string(),
                        g.declined.to_string(),
                        g.open.to_string(),
                        g.conversion_rate().map(ratio).unwrap_or_default(),
                        g.mrr_gained.plain(c),
                        g.average_gain().map(|m| m.plain(c)).unwrap_or_default(),
                        g.forecast.plain(c),
                    ]);
                }
            }
            out
        }
        Format::Table(l) => {
            let mut out = String::new();
            for (_, label, groups) in sections {
                let title = match l {
                    Locale::PtBr => label[0],
                    Locale::En => label[1],
                };
                let mut rows = vec![vec![
                    title.to_string(),
                    say(l, "Feitas", "Made").into(),
                    say(l, "Aceitas", "Accepted").into(),
                    say(l, "Recusadas", "Declined").into(),
                    say(l, "Abertas", "Open").into(),
                    say(l, "Conversão", "Conversion").into(),
                    say(l, "MRR ganho", "MRR gained").into(),
                    say(l, "Média por aceita", "Avg per accepted").into(),
                    say(l, "Previsto", "Forecast").into(),
                ]];
                for g in groups {
                    rows.push(vec![
                        g.key.clone(),
                        g.made.to_string(),
                        g.accepted.to_string(),
                        g.declined.to_string(),
                        g.open.to_string(),
                        g.conversion_rate().map_or("—".into(), |r| percent(r, l)),
                        l.money(g.mrr_gained, c),
                        g.average_gain().map_or("—".into(), |m| l.money(m, c)),
                        l.money(g.forecast, c),
                    ]);
                }
                if !out.is_empty() {
                    out.push('\n');
                }
                out += &table(
                    &rows,
                    &[false, true, true, true, true, true, true, true, true],
                );
            }
            out
        }
    }
}

/// An offline evaluation.
pub fn render_evaluation(e: &Evaluation, c: Currency, format: Format) -> String {
    let k = e.k;
    let measures = |s: &crate::Score| [s.at_k.hit_rate, s.at_k.precision, s.at_k.map, s.at_k.mrr];
    match format {
        Format::Json => pretty(&json!({
            "cutoff": e.cutoff.to_string(),
            "until": e.until.to_string(),
            "k": k,
            "holders": e.holders,
            "customers": e.customers,
            "added": e.added,
            "added_mrr": e.added_mrr.plain(c),
            "recommenders": e.scores.iter().map(|s| {
                let mut o = serde_json::Map::new();
                o.insert("name".into(), json!(s.recommender.key()));
                for (name, v) in MEASURES.iter().zip(measures(s)) {
                    o.insert(format!("{name}_at_k"), json!(ratio(v)));
                }
                o.insert("captured_mrr".into(), json!(s.captured_mrr.plain(c)));
                let lift: serde_json::Map<String, Value> = MEASURES
                    .iter()
                    .zip(s.lift_over_popularity)
                    .map(|(n, v)| (n.to_string(), json!(v.map(ratio))))
                    .collect();
                o.insert("lift_over_popularity".into(), Value::Object(lift));
                Value::Object(o)
            }).collect::<Vec<_>>(),
            "notes": e.notes,
        })),
        Format::Csv => {
            let mut header = vec!["recommender".to_string()];
            header.extend(MEASURES.iter().map(|m| format!("{m}_at_{k}")));
            header.push("captured_mrr".into());
            header.extend(MEASURES.iter().map(|m| format!("{m}_lift")));
            let mut out = csv_line(&header);
            for s in &e.scores {
                let mut row = vec![s.recommender.key().to_string()];
                row.extend(measures(s).map(ratio));
                row.push(s.captured_mrr.plain(c));
                row.extend(
                    s.lift_over_popularity
                        .map(|v| v.map(ratio).unwrap_or_default()),
                );
                out += &csv_line(&row);
            }
            out
        }
        Format::Table(l) => {
            let mut rows = vec![vec![
                say(l, "Recomendador", "Recommender").to_string(),
                format!("HR@{k}"),
                format!("Precision@{k}"),
                format!("MAP@{k}"),
                format!("{}@{k}", say(l, "Rank recíproco", "Recip. rank")),
                say(l, "MRR capturado", "Captured MRR").to_string(),
                say(l, "Lift MAP vs popularidade", "MAP lift vs popularity").to_string(),
            ]];
            for s in &e.scores {
                let m = measures(s);
                rows.push(vec![
                    match s.recommender {
                        Recommender::Rules => say(l, "regras", "rules").to_string(),
                        Recommender::ItemKnn => "item-kNN".to_string(),
                        Recommender::Popularity => say(l, "popularidade", "popularity").to_string(),
                    },
                    local(fixed(m[0], 4), l),
                    local(fixed(m[1], 4), l),
                    local(fixed(m[2], 4), l),
                    local(fixed(m[3], 4), l),
                    l.money(s.captured_mrr, c),
                    s.lift_over_popularity[2].map_or("—".into(), |v| local(fixed(v, 2), l)),
                ]);
            }
            let mut out = format!(
                "{} {} → {} · {} {} {} {} {} {} ({})\n",
                say(l, "Corte", "Cutoff"),
                e.cutoff,
                e.until,
                e.customers,
                say(l, "de", "of"),
                e.holders,
                say(l, "clientes adicionaram", "customers added"),
                e.added,
                say(l, "produtos", "products"),
                l.money(e.added_mrr, c),
            );
            out += &table(&rows, &[false, true, true, true, true, true, true]);
            for n in &e.notes {
                out += &format!("note: {n}\n");
            }
            out
        }
    }
}
