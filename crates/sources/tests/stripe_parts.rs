//! The Stripe warehouse conversion done in parts (an external hash partition by customer)
//! writes the same book and the same report as done whole: the shared samples and generated
//! exports converted with the number of parts forced to several values, compared with one
//! part (rows compared as sets per file; the report's counts, notes and problems equal).

mod common;

use common::{convert_to_temp, fixtures, usd};
use expansa_sources::{time, Conversion, Options, SourceKind, Spec};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// The files of a book and its log, each as the multiset of its rows (the header apart).
type Snapshot = BTreeMap<String, BTreeMap<String, u32>>;

fn snapshot(dir: &Path) -> Snapshot {
    let mut out = Snapshot::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with('.'),
            "work files left in the book: {name}"
        );
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let mut rows = BTreeMap::new();
        let mut lines = text.lines();
        let header = lines.next().unwrap_or("").to_string();
        rows.insert(format!("header: {header}"), 1);
        for l in lines {
            *rows.entry(l.to_string()).or_insert(0) += 1;
        }
        out.insert(name, rows);
    }
    out
}

/// What a conversion gave, comparable whatever the number of parts.
#[derive(Debug, PartialEq)]
enum Outcome {
    Written { files: Snapshot, summary: String },
    Refused(Vec<String>),
}

fn convert(input: &Path, options: &Options, parts: usize) -> Outcome {
    let options = Options {
        parts: Some(parts),
        ..options.clone()
    };
    let (dir, r) = convert_to_temp(&Spec::Source(SourceKind::Stripe), input, &options);
    match r {
        Ok(c) => Outcome::Written {
            files: snapshot(dir.path()),
            summary: summary(&c),
        },
        Err(e) => {
            let mut problems: Vec<String> = e.0.iter().map(ToString::to_string).collect();
            problems.sort();
            problems.push(format!("more: {}", e.1));
            Outcome::Refused(problems)
        }
    }
}

fn summary(c: &Conversion) -> String {
    let s = &c.summary;
    let mut not_rebuilt = s.not_rebuilt.clone();
    not_rebuilt.sort();
    let mut refused = s.refused.clone();
    refused.sort();
    format!(
        "{:?}\n{:?}\n{:?}\n{not_rebuilt:?}\n{:?}\n{refused:?}",
        c.written, s.by_outcome, s.reasons, s.notes
    )
}

/// Converts `input` in 1 part and in several, and checks that all give the same.
fn same_in_parts(input: &Path, options: &Options) -> Outcome {
    let whole = convert(input, options, 1);
    for parts in [2, 3, 7, 16] {
        let got = convert(input, options, parts);
        if got != whole {
            panic!(
                "{} in {parts} parts differs from whole:\n{}",
                input.display(),
                diff(&whole, &got)
            );
        }
    }
    whole
}

fn diff(a: &Outcome, b: &Outcome) -> String {
    match (a, b) {
        (
            Outcome::Written {
                files: fa,
                summary: sa,
            },
            Outcome::Written {
                files: fb,
                summary: sb,
            },
        ) => {
            let mut out = String::new();
            for (a, b) in sa.lines().zip(sb.lines()).filter(|(a, b)| a != b) {
                let _ = writeln!(out, "summary, whole: {a}\nin parts: {b}");
            }
            for (file, rows) in fa {
                let other = fb.get(file).cloned().unwrap_or_default();
                for (row, n) in rows {
                    if other.get(row) != Some(n) {
                        let _ = writeln!(out, "{file}: only whole: {row} x{n}");
                    }
                }
                for (row, n) in &other {
                    if rows.get(row) != Some(n) {
                        let _ = writeln!(out, "{file}: only in parts: {row} x{n}");
                    }
                }
            }
            out
        }
        _ => format!("{a:?}\nvs\n{b:?}"),
    }
}

fn options(skip_refused: bool) -> Options {
    Options {
        currency: usd(),
        timezone: time::time_zone("UTC").unwrap(),
        skip_refused,
        fx_rates: Some(fixtures("stripe").join("fx_rates.csv")),
        ..Options::default()
    }
}

#[test]
fn the_shared_samples_convert_the_same_in_parts() {
    for sample in ["warehouse", "fivetran-sample"] {
        for skip in [false, true] {
            let whole = same_in_parts(&fixtures("stripe").join(sample), &options(skip));
            if skip {
                assert!(
                    matches!(whole, Outcome::Written { .. }),
                    "{sample}: {whole:?}"
                );
            }
        }
    }
}

/// A deterministic pseudo-random number generator (a linear congruential one).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Writes a warehouse export of `subs` subscriptions: customers with several subscriptions,
/// one to three items each, invoice lines rebuilding price changes (and items known only from
/// them), percent and amount-off coupons, trials, cancellations; and, when `broken`, rows the
/// conversion refuses: an item, a discount and an invoice line naming a subscription the
/// export does not have, a second row for a subscription (for another customer), a price that
/// is not there, an invoice line naming an item of another subscription, a second row for an
/// item (on another subscription) and the same item row twice.
fn generate(dir: &Path, subs: u64, seed: u64, broken: bool) {
    let mut rng = Lcg(seed);
    let day = |m: u64, d: u64| format!("2024-{:02}-{:02} 00:00:00", m.clamp(1, 12), d.clamp(1, 28));
    let mut files: BTreeMap<&str, String> = BTreeMap::new();
    files.insert(
        "product.csv",
        "id,name\nprod_a,Basic\nprod_b,Pro\nprod_c,Seats\n".into(),
    );
    files.insert(
        "price.csv",
        "id,product_id,currency,unit_amount,type,recurring_interval,recurring_interval_count,recurring_usage_type,billing_scheme\n\
         price_a,prod_a,usd,1000,recurring,month,1,licensed,per_unit\n\
         price_a2,prod_a,usd,1200,recurring,month,1,licensed,per_unit\n\
         price_b,prod_b,usd,12000,recurring,year,1,licensed,per_unit\n\
         price_c,prod_c,usd,500,recurring,month,1,licensed,per_unit\n\
         price_m,prod_c,usd,7,recurring,month,1,metered,per_unit\n\
         price_unused,prod_a,usd,999,recurring,month,1,licensed,per_unit\n"
            .into(),
    );
    files.insert(
        "coupon.csv",
        "id,percent_off,amount_off,currency,duration,duration_in_months\n\
         pct20,20,,,forever,\n\
         off300,,300,usd,repeating,3\n\
         once10,10,,,once,\n\
         unused,50,,,forever,\n"
            .into(),
    );
    let mut customers = String::from("id,name,created\n");
    let mut subscriptions = String::from(
        "id,customer_id,status,start_date,created,trial_end,cancel_at,cancel_at_period_end,canceled_at,ended_at,current_period_start,current_period_end\n",
    );
    let mut items =
        String::from("id,subscription_id,price_id,quantity,created,current_period_start\n");
    let mut discounts = String::from("id,coupon_id,subscription_id,start,end\n");
    let mut invoices = String::from(
        "id,subscription_id,subscription_item_id,price_id,quantity,amount,period_start,period_end,proration,type\n",
    );
    let n_customers = (subs / 2).max(1);
    for c in 0..n_customers {
        let _ = writeln!(
            customers,
            "cus_{c},Customer {c},{}",
            day(1 + c % 3, 1 + c % 20)
        );
        if c % 17 == 0 {
            // A second row for the same customer.
            let _ = writeln!(customers, "cus_{c},Again {c},{}", day(1, 1));
        }
    }
    let _ = writeln!(customers, "cus_nobody,Nobody,{}", day(1, 1));
    let (mut n_item, mut n_inv) = (0, 0);
    for s in 0..subs {
        let customer = rng.below(n_customers);
        let start_month = 1 + rng.below(6);
        let start = day(start_month, 1 + rng.below(27));
        let status = [
            "active",
            "active",
            "trialing",
            "canceled",
            "past_due",
            "incomplete",
        ][rng.below(6) as usize];
        let trial = if status == "trialing" {
            day(start_month + 1, 5)
        } else {
            String::new()
        };
        let ended = if status == "canceled" {
            day(start_month + 4, 10)
        } else {
            String::new()
        };
        let _ = writeln!(
            subscriptions,
            "sub_{s},cus_{customer},{status},{start},{start},{trial},,false,{ended},{ended},{},{}",
            day(11, 1),
            day(12, 1)
        );
        for _ in 0..1 + rng.below(3) {
            n_item += 1;
            let price = ["price_a", "price_b", "price_c", "price_m"][rng.below(4) as usize];
            let qty = 1 + rng.below(4);
            let _ = writeln!(
                items,
                "si_{n_item},sub_{s},{price},{qty},{start},{}",
                day(11, 1)
            );
            if price == "price_a" && rng.below(2) == 0 {
                // Invoiced at an older price first, then at the current one.
                for (m, p) in [(start_month + 1, "price_a2"), (start_month + 2, "price_a")] {
                    n_inv += 1;
                    let _ = writeln!(
                        invoices,
                        "il_{n_inv},sub_{s},si_{n_item},{p},{qty},100,{},{},false,subscription",
                        day(m, 1),
                        day(m + 1, 1)
                    );
                }
            }
        }
        if rng.below(7) == 0 {
            // An item removed from the subscription: only in invoice lines.
            n_inv += 1;
            let _ = writeln!(
                invoices,
                "il_{n_inv},sub_{s},si_gone_{s},price_c,2,1000,{},{},false,subscription",
                day(start_month + 1, 1),
                day(start_month + 2, 1)
            );
        }
        match rng.below(5) {
            0 => {
                let _ = writeln!(discounts, "di_{s},pct20,sub_{s},{start},");
            }
            1 => {
                let _ = writeln!(discounts, "di_{s},off300,sub_{s},{start},");
            }
            2 => {
                let _ = writeln!(
                    discounts,
                    "di_{s},once10,sub_{s},{},",
                    day(start_month + 1, 1)
                );
            }
            _ => {}
        }
    }
    if broken {
        let _ = writeln!(items, "si_orphan,sub_missing,price_a,1,{},", day(2, 1));
        let _ = writeln!(items, "si_noprice,sub_0,price_missing,1,{},", day(2, 1));
        // An item of sub_0 named by an invoice line of sub_2, a second row for an item on
        // another subscription, and the same item row twice.
        let _ = writeln!(
            invoices,
            "il_cross,sub_2,si_1,price_a,1,100,{},{},false,subscription",
            day(2, 1),
            day(3, 1)
        );
        let _ = writeln!(items, "si_2,sub_4,price_b,9,{},", day(2, 1));
        let first = items.lines().nth(1).unwrap_or_default().to_string();
        let _ = writeln!(items, "{first}");
        let _ = writeln!(discounts, "di_orphan,pct20,sub_missing,{},", day(2, 1));
        let _ = writeln!(
            invoices,
            "il_orphan,sub_missing,si_x,price_a,1,100,{},{},false,subscription",
            day(2, 1),
            day(3, 1)
        );
        let _ = writeln!(
            subscriptions,
            "sub_1,cus_nobody,active,{},{},,,false,,,{},{}",
            day(1, 1),
            day(1, 1),
            day(11, 1),
            day(12, 1)
        );
    }
    files.insert("customer.csv", customers);
    files.insert("subscription.csv", subscriptions);
    files.insert("subscription_item.csv", items);
    files.insert("discount.csv", discounts);
    files.insert("invoice_line_item.csv", invoices);
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

#[test]
fn generated_exports_convert_the_same_in_parts() {
    for (subs, seed, broken) in [(40, 1, false), (300, 7, false), (300, 11, true)] {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), subs, seed, broken);
        for skip in [false, true] {
            let whole = same_in_parts(dir.path(), &options(skip));
            match (&whole, skip) {
                (Outcome::Written { files, .. }, true) => {
                    // A good share of the export became lines.
                    let lines = files.get("subscriptions.csv").map_or(0, |r| r.len());
                    assert!(lines as u64 > subs / 2, "{subs}/{seed}: {lines} lines");
                }
                // Amount-off coupons on subscriptions of several items are refused.
                (Outcome::Refused(p), false) => assert!(p.len() > 1, "{p:?}"),
                _ => panic!("{subs}/{seed}/{broken}/{skip}: {whole:?}"),
            }
        }
    }
}

/// Rows refused for naming what the export does not have, a second row for a subscription
/// naming another customer or for an item, and an invoice line naming an item of another
/// subscription, are refused at their own file and line, in parts as
/// whole.
#[test]
fn refusals_across_parts_name_the_source_row() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 300, 11, true);
    let line_of = |file: &str, start: &str| {
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        1 + text.lines().position(|l| l.starts_with(start)).unwrap()
    };
    let expected = [
        format!(
            "subscription_item.csv:{}: subscription_id: sub_missing: names subscription \
             sub_missing, which subscription.csv does not have",
            line_of("subscription_item.csv", "si_orphan,")
        ),
        format!(
            "subscription_item.csv:{}: price_id: price_missing: names price price_missing, \
             which price.csv does not have",
            line_of("subscription_item.csv", "si_noprice,")
        ),
        format!(
            "discount.csv:{}: subscription_id: sub_missing: names subscription sub_missing, \
             which subscription.csv does not have",
            line_of("discount.csv", "di_orphan,")
        ),
        format!(
            "invoice_line_item.csv:{}: subscription_id: sub_missing: names subscription \
             sub_missing, which subscription.csv does not have",
            line_of("invoice_line_item.csv", "il_orphan,")
        ),
        format!(
            "subscription.csv:{}: id: sub_1: a second row for subscription sub_1 (the first \
             is line 3)",
            line_of("subscription.csv", "sub_1,cus_nobody,")
        ),
        format!(
            "invoice_line_item.csv:{}: subscription_item_id: si_1: item si_1 is on \
             subscription sub_0 (its row, subscription_item.csv:2), not on sub_2",
            line_of("invoice_line_item.csv", "il_cross,")
        ),
        format!(
            "subscription_item.csv:{}: id: si_2: a second row for item si_2 (the first is \
             line 3)",
            line_of("subscription_item.csv", "si_2,sub_4,price_b,9,")
        ),
    ];
    for parts in [1, 5, 16] {
        let Outcome::Refused(problems) = convert(dir.path(), &options(false), parts) else {
            panic!("{parts} parts: not refused");
        };
        for e in &expected {
            assert!(problems.contains(e), "{parts} parts: {e}\nin {problems:#?}");
        }
    }
}

/// Writes a small warehouse export: `items` and `invoices` are the rows of the item table and
/// the invoice lines (without their headers), on two subscriptions of two customers.
fn small_export(dir: &Path, items: &str, invoices: &str) {
    let files = [
        ("customer.csv", "id,name,created\ncus_a,A,2024-01-01\ncus_b,B,2024-01-01\n"),
        (
            "price.csv",
            "id,product_id,currency,unit_amount,type,recurring_interval,recurring_interval_count,recurring_usage_type,billing_scheme\n\
             price_a,prod_a,usd,1000,recurring,month,1,licensed,per_unit\n\
             price_b,prod_a,usd,2000,recurring,month,1,licensed,per_unit\n",
        ),
        (
            "subscription.csv",
            "id,customer_id,status,start_date,created,current_period_start,current_period_end\n\
             sub_a,cus_a,active,2024-01-01,2024-01-01,2024-11-01,2024-12-01\n\
             sub_b,cus_b,active,2024-01-01,2024-01-01,2024-11-01,2024-12-01\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    std::fs::write(
        dir.join("subscription_item.csv"),
        format!("id,subscription_id,price_id,quantity,created,current_period_start\n{items}"),
    )
    .unwrap();
    std::fs::write(
        dir.join("invoice_line_item.csv"),
        format!(
            "id,subscription_id,subscription_item_id,price_id,quantity,amount,period_start,period_end,proration,type\n{invoices}"
        ),
    )
    .unwrap();
}

/// A second row for an item, and invoice lines naming an item of another subscription (by the
/// item table, or by the first invoice line of an item known only from invoice lines), are
/// refused at their own row with the item's true subscription, whatever the parts; the same
/// row twice is a duplicate; with --skip-refused the first rows make the book.
#[test]
fn an_item_of_another_subscription_is_refused_whatever_the_parts() {
    let dir = tempfile::tempdir().unwrap();
    small_export(
        dir.path(),
        "si_a,sub_a,price_a,1,2024-01-01,2024-11-01\n\
         si_b,sub_b,price_b,1,2024-01-01,2024-11-01\n\
         si_a,sub_b,price_a,2,2024-01-01,2024-11-01\n\
         si_b,sub_b,price_b,1,2024-01-01,2024-11-01\n",
        "il_1,sub_a,si_a,price_a,1,1000,2024-01-01,2024-02-01,false,subscription\n\
         il_2,sub_b,si_a,price_b,1,2000,2024-02-01,2024-03-01,false,subscription\n\
         il_3,sub_b,si_gone,price_a,1,1000,2024-01-01,2024-02-01,false,subscription\n\
         il_4,sub_a,si_gone,price_a,1,1000,2024-02-01,2024-03-01,false,subscription\n",
    );
    let expected = vec![
        "invoice_line_item.csv:3: subscription_item_id: si_a: item si_a is on subscription \
         sub_a (its row, subscription_item.csv:2), not on sub_b"
            .to_string(),
        "invoice_line_item.csv:5: subscription_item_id: si_gone: item si_gone is on \
         subscription sub_b (the invoice line, invoice_line_item.csv:4), not on sub_a"
            .to_string(),
        "subscription_item.csv:4: id: si_a: a second row for item si_a (the first is line 2)"
            .to_string(),
        "more: 0".to_string(),
    ];
    assert_eq!(
        same_in_parts(dir.path(), &options(false)),
        Outcome::Refused(expected.clone())
    );
    let Outcome::Written { files, summary } = same_in_parts(dir.path(), &options(true)) else {
        panic!("not written with --skip-refused");
    };
    let lines = &files["subscriptions.csv"];
    let has = |start: &str| lines.keys().any(|l| l.starts_with(start));
    assert!(has("si_a,") && has("si_b,") && has("si_gone"), "{lines:?}");
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(summary.contains("duplicate"), "{summary}");
}

/// The same discount row twice is applied once (a `duplicate`); a second row for a discount
/// on another subscription is refused, whatever the parts.
#[test]
fn a_second_row_for_a_discount_is_a_duplicate_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    small_export(
        dir.path(),
        "si_a,sub_a,price_a,1,2024-01-01,2024-11-01\n\
         si_b,sub_b,price_b,1,2024-01-01,2024-11-01\n",
        "",
    );
    std::fs::write(
        dir.path().join("coupon.csv"),
        "id,percent_off,amount_off,currency,duration,duration_in_months\npct10,10,,,forever,\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("discount.csv"),
        "id,coupon_id,subscription_id,start,end\n\
         di_1,pct10,sub_a,2024-01-01,\n\
         di_1,pct10,sub_a,2024-01-01,\n\
         di_1,pct10,sub_b,2024-01-01,\n",
    )
    .unwrap();
    let expected = Outcome::Refused(vec![
        "discount.csv:4: id: di_1: a second row for discount di_1 (the first is line 2)".into(),
        "more: 0".into(),
    ]);
    assert_eq!(same_in_parts(dir.path(), &options(false)), expected);
    let Outcome::Written { files, summary } = same_in_parts(dir.path(), &options(true)) else {
        panic!("not written with --skip-refused");
    };
    let lines: Vec<&String> = files["subscriptions.csv"].keys().collect();
    assert_eq!(
        lines[1..],
        [
            "si_a,cus_a,sub_a,prod_a,1,10,10,USD,1,,,2024-01-01,,,",
            "si_b,cus_b,sub_b,prod_a,1,20,,USD,1,,,2024-01-01,,,"
        ]
    );
    assert!(summary.contains("duplicate"), "{summary}");
}

/// A subscription naming a customer the customer table does not have is refused, whatever the
/// parts; without a customer table, the customer is taken as the subscription names it.
#[test]
fn a_subscription_of_a_customer_the_table_lacks_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    small_export(
        dir.path(),
        "si_a,sub_a,price_a,1,2024-01-01,2024-11-01\n\
         si_c,sub_c,price_b,1,2024-01-01,2024-11-01\n",
        "",
    );
    let subs = dir.path().join("subscription.csv");
    let mut text = std::fs::read_to_string(&subs).unwrap();
    text.push_str("sub_c,cus_x,active,2024-01-01,2024-01-01,2024-11-01,2024-12-01\n");
    std::fs::write(&subs, text).unwrap();
    let expected = Outcome::Refused(vec![
        "subscription.csv:4: customer_id: cus_x: names customer cus_x, which customer.csv does \
         not have"
            .into(),
        "more: 0".into(),
    ]);
    assert_eq!(same_in_parts(dir.path(), &options(false)), expected);
    std::fs::remove_file(dir.path().join("customer.csv")).unwrap();
    let Outcome::Written { files, .. } = same_in_parts(dir.path(), &options(false)) else {
        panic!("not written without a customer table");
    };
    assert!(
        files["customers.csv"]
            .keys()
            .any(|l| l.starts_with("cus_x,")),
        "{files:?}"
    );
}
