//! A subscription's state, as an event carries it, applied from the event's day on. The book
//! keeps what its lines said before that day: a quantity or price changed by an event is an
//! upsell or a downsell in the month it happened, a removed item or a cancellation a churn
//! then, never a rewrite of the months before (docs/api.md, "Webhooks").
//!
//! Per Stripe item (a line's id up to `@`: the converter names an item's later segments
//! `ITEM@YYYY-MM-DD`, docs/sources.md):
//! - an item the book does not hold yet: the converted lines as they are (a new subscription,
//!   or an item added to one);
//! - the book's segments that start on or after the day are replaced by the event's; the one
//!   that covers the day ends the day before it (or on the item's own end, when the event says
//!   it ended earlier);
//! - from the day on, the event's segments: the first, clipped to start on the day, is
//!   `ITEM@DAY` and revises the segment it follows; when it has that segment's terms (product,
//!   quantity, price, discount, currency, billing period), that segment simply goes on to the
//!   event's end (a cancellation, a scheduled end or its undoing);
//! - an item the event no longer has ends the day before.

use expansa_import::schema::SUBSCRIPTIONS;
use expansa_ledger::Decimal;
use jiff::civil::Date;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A line's values, in the columns of `subscriptions.csv`.
pub(super) type Values = Vec<Option<String>>;

/// A change to the lines of one subscription.
#[derive(Debug, PartialEq)]
pub(super) enum LineChange {
    /// Add the line, or replace the one with its id.
    Put(Values),
    /// Remove the line with this id.
    Remove(String),
}

/// The columns that make a line's terms: the same terms from one day to the next are one line.
const TERMS: [&str; 10] = [
    "customer_id",
    "contract_id",
    "product_id",
    "quantity",
    "unit_price",
    "discount_pct",
    "currency",
    "billing_period_months",
    "billing_interval",
    "billing_interval_count",
];

/// Columns whose values are decimals: `3` and `3.00` are the same terms.
const DECIMALS: [&str; 3] = ["quantity", "unit_price", "discount_pct"];

fn at(column: &str) -> usize {
    SUBSCRIPTIONS.position(column).unwrap_or(usize::MAX)
}

fn get<'a>(line: &'a Values, column: &str) -> Option<&'a str> {
    line.get(at(column)).and_then(|v| v.as_deref())
}

fn set(line: &mut Values, column: &str, value: Option<String>) {
    if let Some(slot) = line.get_mut(at(column)) {
        *slot = value;
    }
}

fn id(line: &Values) -> &str {
    get(line, "id").unwrap_or("")
}

/// The Stripe item a line is a segment of.
fn item(line: &Values) -> &str {
    id(line).split('@').next().unwrap_or("")
}

fn date(line: &Values, column: &str) -> Result<Option<Date>, String> {
    get(line, column)
        .map(|text| {
            text.parse::<Date>()
                .map_err(|e| format!("line {}: {column} {text:?}: {e}", id(line)))
        })
        .transpose()
}

fn start(line: &Values) -> Result<Date, String> {
    date(line, "start_date")?.ok_or_else(|| format!("line {}: no start_date", id(line)))
}

fn same_terms(a: &Values, b: &Values) -> bool {
    TERMS.iter().all(|c| {
        let (x, y) = (get(a, c), get(b, c));
        if DECIMALS.contains(c) {
            let number = |v: Option<&str>| v.map(|t| t.parse::<Decimal>().map(|d| d.normalize()));
            if let (Some(Ok(x)), Some(Ok(y))) = (number(x), number(y)) {
                return x == y;
            }
        }
        x == y
    })
}

/// The changes that make the book's lines of a subscription (`held`) say what `converted`
/// (the event's subscription, converted as `expansa convert --from stripe` does) says from
/// `day` on, keeping what they said before it. Errors: a held or converted line whose dates
/// cannot be read.
pub(super) fn merge(
    held: &[Values],
    converted: &[Values],
    day: Date,
) -> Result<Vec<LineChange>, String> {
    let day_before = day.yesterday().unwrap_or(day);
    let mut by_item: BTreeMap<&str, (Vec<&Values>, Vec<&Values>)> = BTreeMap::new();
    for l in held {
        by_item.entry(item(l)).or_default().0.push(l);
    }
    for l in converted {
        by_item.entry(item(l)).or_default().1.push(l);
    }
    let mut puts: Vec<Values> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    for (item, (mut b, mut c)) in by_item {
        b.sort_by_key(|l| get(l, "start_date").map(str::to_string));
        c.sort_by_key(|l| get(l, "start_date").map(str::to_string));
        if b.is_empty() {
            puts.extend(c.into_iter().cloned());
            continue;
        }
        // Where the book's segments stop: the day before, or the item's own earlier end.
        let cut = match c.last() {
            Some(last) => match date(last, "end_date")? {
                Some(end) if end < day_before => end,
                _ => day_before,
            },
            None => day_before,
        };
        // The held segments before the day, each with its end as held.
        let mut kept: Vec<(Values, Option<String>)> = Vec::new();
        for l in b {
            let s = start(l)?;
            let end = date(l, "end_date")?;
            let new_end = end.map_or(cut, |e| e.min(cut));
            if s >= day || new_end < s {
                removed.push(id(l).to_string());
                continue;
            }
            let mut line = l.clone();
            set(&mut line, "end_date", Some(new_end.to_string()));
            kept.push((line, get(l, "end_date").map(str::to_string)));
        }
        // The event's segments from the day on, the first clipped to it.
        let mut renamed: HashMap<String, String> = HashMap::new();
        let mut from_day: Vec<Values> = Vec::new();
        for l in c {
            let s = start(l)?;
            if date(l, "end_date")?.is_some_and(|e| e < day) {
                continue;
            }
            let mut line = l.clone();
            if s < day || kept.iter().any(|(k, _)| id(k) == id(l)) {
                let new_id = format!("{item}@{day}");
                renamed.insert(id(l).to_string(), new_id.clone());
                set(&mut line, "id", Some(new_id));
                set(&mut line, "start_date", Some(day.max(s).to_string()));
            }
            from_day.push(line);
        }
        // The segment the event's first one follows, when it ends the day before.
        let follows = kept
            .last()
            .filter(|(l, _)| date(l, "end_date").ok().flatten() == Some(day_before))
            .map(|(l, _)| id(l).to_string());
        let mut first = true;
        for mut line in from_day {
            let starts_on_day = date(&line, "start_date")? == Some(day);
            if first && starts_on_day {
                if let (Some(prior), Some((last, _))) = (&follows, kept.last_mut()) {
                    if same_terms(last, &line) {
                        // The same terms go on: the held segment takes the event's end.
                        let end = get(&line, "end_date").map(str::to_string);
                        set(last, "end_date", end);
                        renamed.insert(id(&line).to_string(), prior.clone());
                        first = false;
                        continue;
                    }
                    set(&mut line, "revises", Some(prior.clone()));
                }
            } else if let Some(r) = get(&line, "revises").map(str::to_string) {
                if let Some(new) = renamed.get(&r) {
                    set(&mut line, "revises", Some(new.clone()));
                }
            }
            first = false;
            puts.push(line);
        }
        puts.extend(
            kept.into_iter()
                .filter(|(l, held_end)| get(l, "end_date") != held_end.as_deref())
                .map(|(l, _)| l),
        );
    }
    // A held line whose id the event's lines take is replaced, not removed.
    let put_ids: BTreeSet<String> = puts.iter().map(|l| id(l).to_string()).collect();
    let mut changes: Vec<LineChange> = removed
        .into_iter()
        .filter(|r| !put_ids.contains(r))
        .map(LineChange::Remove)
        .collect();
    changes.extend(puts.into_iter().map(LineChange::Put));
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line: id, quantity, start, end (customer c, contract sub_1, product P, 50.00 a month).
    fn line(id: &str, quantity: &str, start: &str, end: Option<&str>) -> Values {
        let mut v: Values = vec![None; SUBSCRIPTIONS.columns.len()];
        for (c, x) in [
            ("id", Some(id)),
            ("customer_id", Some("c")),
            ("contract_id", Some("sub_1")),
            ("product_id", Some("P")),
            ("quantity", Some(quantity)),
            ("unit_price", Some("50")),
            ("billing_period_months", Some("1")),
            ("start_date", Some(start)),
            ("end_date", end),
        ] {
            set(&mut v, c, x.map(str::to_string));
        }
        v
    }

    fn revising(mut l: Values, prior: &str) -> Values {
        set(&mut l, "revises", Some(prior.into()));
        l
    }

    fn day(text: &str) -> Date {
        text.parse().unwrap()
    }

    #[test]
    fn a_new_item_is_written_as_converted() {
        let new = line("si_1", "1", "2025-01-01", None);
        let changes = merge(&[], std::slice::from_ref(&new), day("2025-01-01")).unwrap();
        assert_eq!(changes, [LineChange::Put(new)]);
    }

    #[test]
    fn a_quantity_change_starts_a_segment_on_the_day_and_keeps_the_past() {
        let held = [line("si_1", "1", "2025-01-01", None)];
        let converted = [line("si_1", "3.00", "2025-01-01", None)];
        let changes = merge(&held, &converted, day("2025-02-10")).unwrap();
        assert_eq!(
            changes,
            [
                LineChange::Put(revising(
                    line("si_1@2025-02-10", "3.00", "2025-02-10", None),
                    "si_1"
                )),
                LineChange::Put(line("si_1", "1", "2025-01-01", Some("2025-02-09"))),
            ]
        );
    }

    #[test]
    fn the_same_terms_go_on_with_the_events_end() {
        let held = [
            line("si_1", "1", "2025-01-01", Some("2025-01-31")),
            revising(line("si_1@2025-02-01", "3", "2025-02-01", None), "si_1"),
        ];
        // Cancelled on 2025-03-01: the current segment ends then, nothing else changes.
        let converted = [line("si_1", "3", "2025-01-01", Some("2025-03-01"))];
        let changes = merge(&held, &converted, day("2025-03-01")).unwrap();
        assert_eq!(
            changes,
            [LineChange::Put(revising(
                line("si_1@2025-02-01", "3", "2025-02-01", Some("2025-03-01")),
                "si_1"
            ))]
        );
        // The same state again: nothing to change.
        let ended = [
            held[0].clone(),
            revising(
                line("si_1@2025-02-01", "3", "2025-02-01", Some("2025-03-01")),
                "si_1",
            ),
        ];
        assert_eq!(merge(&ended, &converted, day("2025-03-01")).unwrap(), []);
    }

    #[test]
    fn an_end_before_the_day_cuts_there_and_a_gone_item_ends_the_day_before() {
        let held = [
            line("si_1", "1", "2025-01-01", None),
            line("si_2", "2", "2025-01-01", None),
        ];
        let converted = [line("si_1", "1", "2025-01-01", Some("2025-02-20"))];
        let changes = merge(&held, &converted, day("2025-03-05")).unwrap();
        assert_eq!(
            changes,
            [
                LineChange::Put(line("si_1", "1", "2025-01-01", Some("2025-02-20"))),
                LineChange::Put(line("si_2", "2", "2025-01-01", Some("2025-03-04"))),
            ]
        );
    }

    #[test]
    fn segments_from_the_day_on_are_the_events() {
        // A segment written for a later day by an earlier event is replaced.
        let held = [
            line("si_1", "1", "2025-01-01", Some("2025-03-31")),
            revising(line("si_1@2025-04-01", "5", "2025-04-01", None), "si_1"),
            line("si_3", "1", "2025-04-01", None),
        ];
        let converted = [line("si_1", "2", "2025-01-01", None)];
        let changes = merge(&held, &converted, day("2025-03-01")).unwrap();
        assert_eq!(
            changes,
            [
                LineChange::Remove("si_1@2025-04-01".into()),
                LineChange::Remove("si_3".into()),
                LineChange::Put(revising(
                    line("si_1@2025-03-01", "2", "2025-03-01", None),
                    "si_1"
                )),
                LineChange::Put(line("si_1", "1", "2025-01-01", Some("2025-02-28"))),
            ]
        );
    }

    #[test]
    fn after_a_gap_the_new_segment_revises_nothing() {
        let held = [line("si_1", "1", "2024-01-01", Some("2024-06-30"))];
        let converted = [line("si_1", "1", "2025-01-01", None)];
        let changes = merge(&held, &converted, day("2025-01-01")).unwrap();
        assert_eq!(
            changes,
            [LineChange::Put(line(
                "si_1@2025-01-01",
                "1",
                "2025-01-01",
                None
            ))]
        );
    }
}
