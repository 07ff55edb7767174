//! The Stripe converter on the shared Fivetran sample, a consistent warehouse fixture and
//! API JSON fixtures written from Stripe's API reference. Every expected value is worked
//! out by hand in `fixtures/stripe/NOTES.md`.

mod common;

use common::{convert_to_temp, dec, fixtures, read_in, usd};
use expansa_import::BookErrors;
use expansa_ledger::Currency;
use expansa_sources::{time, Conversion, Options, SourceKind, Spec};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    fixtures("stripe").join(name)
}

fn options(tz: &str, skip_refused: bool) -> Options {
    Options {
        currency: usd(),
        timezone: time::time_zone(tz).unwrap(),
        skip_refused,
        // The JPY rate the API fixture's yen line needs (copied into the book).
        fx_rates: Some(fixture("fx_rates.csv")),
        ..Options::default()
    }
}

fn convert(input: &Path, o: &Options) -> (Result<Conversion, BookErrors>, tempfile::TempDir) {
    let (dir, r) = convert_to_temp(&Spec::Source(SourceKind::Stripe), input, o);
    (r, dir)
}

/// The rows of a CSV the conversion wrote, by their first column.
fn rows(dir: &Path, file: &str) -> BTreeMap<String, HashMap<String, String>> {
    let mut out = BTreeMap::new();
    let Ok(mut r) = csv::Reader::from_path(dir.join(file)) else {
        return out;
    };
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    for rec in r.records() {
        let rec = rec.unwrap();
        let row: HashMap<String, String> = header
            .iter()
            .cloned()
            .zip(rec.iter().map(str::to_string))
            .collect();
        out.insert(rec[0].to_string(), row);
    }
    out
}

/// Checks a written line field by field (`""` = empty).
fn line(lines: &BTreeMap<String, HashMap<String, String>>, id: &str, expect: &[(&str, &str)]) {
    let row = lines
        .get(id)
        .unwrap_or_else(|| panic!("no line {id}: {:?}", lines.keys()));
    for (col, want) in expect {
        assert_eq!(
            row.get(*col).map(String::as_str),
            Some(*want),
            "line {id}, column {col}"
        );
    }
}

/// The outcome of every row of conversion.csv: (file, source_id) → (outcome, reason).
fn log(dir: &Path) -> Vec<(String, String, String, String)> {
    let mut r = csv::Reader::from_path(dir.join("conversion.csv")).unwrap();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (
                rec[0].to_string(),
                rec[2].to_string(),
                rec[3].to_string(),
                rec[4].to_string(),
            )
        })
        .collect()
}

fn outcome(log: &[(String, String, String, String)], file: &str, id: &str) -> (String, String) {
    let found: Vec<_> = log
        .iter()
        .filter(|(f, i, _, _)| f == file && i == id)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{file} {id}: one report entry, got {found:?}"
    );
    (found[0].2.clone(), found[0].3.clone())
}

/// How many data rows a CSV file has (its records, by the csv crate).
fn data_rows(path: &Path) -> usize {
    csv::Reader::from_path(path).unwrap().records().count()
}

/// The book's MRR on a day: the sum of the MRR of the lines active then, to the cent.
fn mrr_on(dir: &Path, on: &str) -> Decimal {
    common::mrr_on(&read_in(dir, usd()), on).round_dp(2)
}

// ----- the shared Fivetran sample -------------------------------------------------------

#[test]
fn fivetran_sample_as_is_is_refused_with_each_problem() {
    let (r, _dir) = convert(&fixture("fivetran-sample"), &options("UTC", false));
    let errors = r.expect_err("the sample's rows do not hold together");
    let problems: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    // 12 items on missing subscriptions, 10 discounts, 3 invoice lines on missing plans, 2
    // subscriptions of customers the customer table does not have.
    assert_eq!(errors.total(), 27, "{problems:#?}");
    for p in [
        "subscription_data.csv:2: customer_id: sdf6547: names customer sdf6547, which \
         customer_data.csv does not have",
        "subscription_item_data.csv:4: subscription_id: sdfg5637: names subscription sdfg5637, \
         which subscription_data.csv does not have",
        "subscription_item_data.csv:15: subscription_id: sdfg5647: names subscription sdfg5647, \
         which subscription_data.csv does not have",
        "discount_data.csv:2: subscription_id: sub_1LjcrrDZlKRVG8Gnv1Bjosun: names subscription \
         sub_1LjcrrDZlKRVG8Gnv1Bjosun, which subscription_data.csv does not have",
        "discount_data.csv:10: coupon_id: 2023-08-07 09:37:39.000000: names coupon \
         2023-08-07 09:37:39.000000, which coupon_data.csv does not have",
        "invoice_line_item_data.csv:2: plan_id: sg555: names price sg555, which price_data.csv \
         or plan_data.csv does not have",
        "invoice_line_item_data.csv:4: plan_id: adsdgf5575: names price adsdgf5575, which \
         price_data.csv or plan_data.csv does not have",
    ] {
        assert!(
            problems.iter().any(|x| x == p),
            "missing {p}\nin {problems:#?}"
        );
    }
}

#[test]
fn fivetran_sample_with_skip_refused_keeps_what_holds_together() {
    let (r, dir) = convert(&fixture("fivetran-sample"), &options("UTC", true));
    let conv = r.unwrap_or_else(|e| panic!("{:?}", e.0));
    // Both subscriptions name customers the customer table does not have: no line at all.
    assert_eq!(conv.written.lines, 0);
    assert_eq!(conv.written.customers, 0);
    assert_eq!(conv.written.products, 10);
    let log = log(dir.path());
    for id in ["sdgfs4536", "sfjytkyu876"] {
        assert_eq!(
            outcome(&log, "subscription_data.csv", id),
            ("refused".into(), "missing_reference".into())
        );
    }
    assert_eq!(
        outcome(
            &log,
            "subscription_item_data.csv",
            "bea81c1795a612d8fc3a232b15646701"
        ),
        ("skipped".into(), "not_used".into())
    );
    assert_eq!(
        outcome(&log, "price_data.csv", "price_1"),
        ("skipped".into(), "one_off".into())
    );
    // subscription_discount is not read when the newer discount table is there; it says so.
    assert!(!log
        .iter()
        .any(|(f, _, _, _)| f == "subscription_discount_data.csv"));
    assert!(
        conv.summary.notes.iter().any(|n| n.contains(
            "subscription_discount_data.csv (the discounts are read from the discount table)"
        )),
        "{:?}",
        conv.summary.notes
    );
}

/// Every row of every table the conversion reads has exactly one entry in conversion.csv.
fn assert_every_row_reported(input: &Path, dir: &Path, files: &[&str]) {
    let log = log(dir);
    for f in files {
        let n = log.iter().filter(|(file, _, _, _)| file == f).count();
        assert_eq!(n, data_rows(&input.join(f)), "rows of {f} reported");
    }
}

#[test]
fn fivetran_sample_reports_every_row_it_reads() {
    let input = fixture("fivetran-sample");
    let (_, dir) = convert(&input, &options("UTC", true));
    assert_every_row_reported(
        &input,
        dir.path(),
        &[
            "subscription_data.csv",
            "subscription_item_data.csv",
            "price_data.csv",
            "plan_data.csv",
            "coupon_data.csv",
            "discount_data.csv",
            "invoice_line_item_data.csv",
            "customer_data.csv",
            "product_data.csv",
        ],
    );
}

// ----- a consistent warehouse export ----------------------------------------------------

#[test]
fn warehouse_tables_become_lines_with_history_and_discounts() {
    let input = fixture("warehouse");
    let (r, dir) = convert(&input, &options("UTC", false));
    let conv = r.unwrap_or_else(|e| panic!("{:?}", e.0));
    let dir = dir.path();
    let lines = rows(dir, "subscriptions.csv");
    assert_eq!(lines.len(), 4, "{:?}", lines.keys());
    line(
        &lines,
        "si_w1",
        &[
            ("customer_id", "cus_w1"),
            ("contract_id", "sub_w1"),
            ("product_id", "prod_pro"),
            ("quantity", "5"),
            ("unit_price", "8"),
            ("discount_pct", ""),
            ("currency", "USD"),
            ("billing_period_months", "1"),
            ("start_date", "2024-01-15"),
            ("end_date", "2024-04-14"),
            ("revises", ""),
        ],
    );
    line(
        &lines,
        "si_w1@2024-04-15",
        &[
            ("product_id", "prod_pro"),
            ("quantity", "5"),
            ("unit_price", "10"),
            ("start_date", "2024-04-15"),
            ("end_date", ""),
            ("revises", "si_w1"),
        ],
    );
    line(
        &lines,
        "si_w2",
        &[
            ("customer_id", "cus_w2"),
            ("product_id", "prod_basic"),
            ("quantity", "1"),
            ("unit_price", "49"),
            ("discount_pct", "50"),
            ("billing_period_months", "3"),
            ("start_date", "2024-02-01"),
            ("end_date", "2024-04-30"),
        ],
    );
    line(
        &lines,
        "si_w4",
        &[
            ("customer_id", "cus_w1"),
            ("unit_price", "10"),
            ("start_date", "2024-07-04"),
            ("end_date", ""),
        ],
    );
    let customers = rows(dir, "customers.csv");
    assert_eq!(customers.len(), 2);
    assert_eq!(customers["cus_w1"]["name"], "Acme Ltda");
    assert_eq!(customers["cus_w1"]["registered_on"], "2024-01-14");
    assert_eq!(customers["cus_w2"]["name"], "Beta SA");
    assert_eq!(
        conv.summary.not_rebuilt,
        vec![
            "sub_w1 item si_w1: 2024-01..2024-02: no invoice line before 2024-02-15: the first \
             invoiced price is assumed"
                .to_string()
        ]
    );
    let log = log(dir);
    let o = |f: &str, id: &str| outcome(&log, f, id);
    assert_eq!(
        o("subscription_item_data.csv", "si_w3"),
        ("skipped".into(), "not_billable".into())
    );
    assert_eq!(
        o("price_data.csv", "price_setup"),
        ("skipped".into(), "one_off".into())
    );
    assert_eq!(
        o("price_data.csv", "price_volume"),
        ("skipped".into(), "not_used".into())
    );
    assert_eq!(
        o("invoice_line_item_data.csv", "il_w5"),
        ("skipped".into(), "one_off".into())
    );
    assert_eq!(
        o("invoice_line_item_data.csv", "il_w2"),
        ("merged".into(), "history".into())
    );
    assert_eq!(
        o("subscription_discount_data.csv", "di_w2"),
        ("merged".into(), "discount".into())
    );
    assert_eq!(
        o("coupon_data.csv", "UNUSED10"),
        ("skipped".into(), "not_used".into())
    );
    assert_eq!(
        o("customer_data.csv", "cus_w3"),
        ("skipped".into(), "not_used".into())
    );
    assert_every_row_reported(
        &input,
        dir,
        &[
            "subscription_data.csv",
            "subscription_item_data.csv",
            "price_data.csv",
            "plan_data.csv",
            "coupon_data.csv",
            "subscription_discount_data.csv",
            "invoice_line_item_data.csv",
            "customer_data.csv",
            "product_data.csv",
        ],
    );
    assert_eq!(mrr_on(dir, "2024-03-31"), dec("48.17"));
    assert_eq!(mrr_on(dir, "2024-06-30"), dec("50"));
    assert_eq!(mrr_on(dir, "2024-07-31"), dec("60"));
}

#[test]
fn a_tiered_price_in_use_is_refused_not_guessed() {
    let src = fixture("warehouse");
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, tmp.path().join(p.file_name().unwrap())).unwrap();
    }
    let items = tmp.path().join("subscription_item_data.csv");
    let text = std::fs::read_to_string(&items)
        .unwrap()
        .replace("si_w4,{},price_pro", "si_w4,{},price_volume");
    std::fs::write(&items, text).unwrap();
    let (r, _dir) = convert(tmp.path(), &options("UTC", false));
    let problems: Vec<String> = r.err().unwrap().0.iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        vec![
            "subscription_item_data.csv:5: plan_id: price_volume: price price_volume: a tiered \
             price (billing_scheme = tiered): its amount depends on tiers the conversion does \
             not price, so no unit price is guessed"
                .to_string()
        ]
    );
}

// ----- API objects ----------------------------------------------------------------------

#[test]
fn api_objects_become_lines() {
    let (r, dir) = convert(&fixture("api"), &options("America/Sao_Paulo", false));
    let conv = r.unwrap_or_else(|e| panic!("{:?}", e.0));
    let dir = dir.path();
    let lines = rows(dir, "subscriptions.csv");
    assert_eq!(lines.len(), 8, "{:?}", lines.keys());
    // A monthly item of 3 seats under a 25% coupon for 3 months: split, the rest revises it.
    line(
        &lines,
        "si_1a",
        &[
            ("customer_id", "cus_A"),
            ("contract_id", "sub_1"),
            ("product_id", "prod_seats"),
            ("quantity", "3"),
            ("unit_price", "20"),
            ("discount_pct", "25"),
            ("currency", "USD"),
            ("billing_period_months", "1"),
            ("start_date", "2024-01-10"),
            ("end_date", "2024-04-09"),
            ("revises", ""),
        ],
    );
    line(
        &lines,
        "si_1a@2024-04-10",
        &[
            ("quantity", "3"),
            ("unit_price", "20"),
            ("discount_pct", ""),
            ("start_date", "2024-04-10"),
            ("end_date", ""),
            ("revises", "si_1a"),
        ],
    );
    // Yearly: 12 months.
    line(
        &lines,
        "si_2a",
        &[
            ("product_id", "prod_annual"),
            ("unit_price", "1200"),
            ("billing_period_months", "12"),
            ("billing_interval", ""),
            ("start_date", "2024-02-15"),
        ],
    );
    // JPY has no minor unit: 5000 stays 5000.
    line(
        &lines,
        "si_3",
        &[
            ("quantity", "2"),
            ("unit_price", "5000"),
            ("currency", "JPY"),
            ("start_date", "2024-03-01"),
        ],
    );
    // Weekly, ended.
    line(
        &lines,
        "si_4",
        &[
            ("unit_price", "15"),
            ("billing_period_months", ""),
            ("billing_interval", "week"),
            ("billing_interval_count", "1"),
            ("start_date", "2024-04-01"),
            ("end_date", "2024-05-13"),
        ],
    );
    // A trial: the line starts when it ends.
    line(
        &lines,
        "si_5",
        &[("start_date", "2024-03-15"), ("end_date", "")],
    );
    // cancel_at_period_end, the period ending at 00:00 in São Paulo: the day before.
    line(
        &lines,
        "si_6",
        &[
            ("unit_price", "50"),
            ("start_date", "2024-01-01"),
            ("end_date", "2024-06-30"),
        ],
    );
    // 15.00 off forever on a 100.00 price, quantity 1.
    line(
        &lines,
        "si_7",
        &[
            ("unit_price", "85"),
            ("discount_pct", ""),
            ("start_date", "2024-02-01"),
            ("end_date", ""),
        ],
    );
    let log = log(dir);
    let o = |id: &str| outcome(&log, "subscriptions.json", id);
    assert_eq!(o("si_1b"), ("skipped".into(), "metered".into()));
    assert_eq!(o("si_2b"), ("skipped".into(), "one_off".into()));
    // sub_8 is left out whole: its object (with its item nested in it) is one row, told once.
    assert_eq!(o("sub_8"), ("skipped".into(), "not_billable".into()));
    assert!(!log.iter().any(|(_, id, _, _)| id == "si_8"));
    assert_eq!(o("di_1"), ("merged".into(), "discount".into()));
    assert_eq!(o("di_7"), ("merged".into(), "discount".into()));
    assert_eq!(o("si_1a"), ("mapped".into(), "recurring".into()));
    let customers = rows(dir, "customers.csv");
    assert_eq!(customers.len(), 7);
    assert_eq!(customers["cus_A"]["name"], "Ana Lima");
    assert_eq!(customers["cus_A"]["registered_on"], "2024-01-09");
    assert_eq!(
        conv.summary.not_rebuilt,
        vec![
            "every item: the source has no invoice lines, so each line carries its item's \
             current price from its start"
                .to_string()
        ]
    );
    assert_eq!(mrr_on(dir, "2024-06-30"), dec("381"));
    assert_eq!(mrr_on(dir, "2024-03-31"), dec("366"));
}

#[test]
fn the_time_zone_decides_the_day_an_instant_falls_on() {
    let (r, dir) = convert(&fixture("api"), &options("UTC", false));
    r.unwrap_or_else(|e| panic!("{:?}", e.0));
    let lines = rows(dir.path(), "subscriptions.csv");
    // 2024-07-01 00:00 in São Paulo is 03:00 UTC: in a UTC book the service runs that day.
    line(&lines, "si_6", &[("end_date", "2024-07-01")]);
}

#[test]
fn invoices_rebuild_a_price_change() {
    let input = fixture("api-invoices");
    let (r, dir) = convert(&input, &options("America/Sao_Paulo", false));
    let conv = r.unwrap_or_else(|e| panic!("{:?}", e.0));
    let dir = dir.path();
    let lines = rows(dir, "subscriptions.csv");
    assert_eq!(lines.len(), 4, "{:?}", lines.keys());
    line(
        &lines,
        "si_h1",
        &[
            ("customer_id", "cus_J"),
            ("contract_id", "sub_h1"),
            ("product_id", "prod_basic"),
            ("quantity", "2"),
            ("unit_price", "25"),
            ("start_date", "2024-01-05"),
            ("end_date", "2024-05-04"),
            ("revises", ""),
        ],
    );
    line(
        &lines,
        "si_h1@2024-05-05",
        &[
            ("product_id", "prod_pro"),
            ("quantity", "2"),
            ("unit_price", "40"),
            ("start_date", "2024-05-05"),
            ("end_date", ""),
            ("revises", "si_h1"),
        ],
    );
    line(
        &lines,
        "si_h2",
        &[
            ("product_id", "prod_addon"),
            ("unit_price", "10"),
            ("start_date", "2024-02-20"),
            ("end_date", ""),
        ],
    );
    line(
        &lines,
        "si_old",
        &[
            ("product_id", "prod_support"),
            ("quantity", "1"),
            ("unit_price", "15"),
            ("start_date", "2024-01-05"),
            ("end_date", "2024-03-05"),
        ],
    );
    assert_eq!(
        conv.summary.not_rebuilt,
        vec![
            "sub_h1 item si_h1: 2024-01..2024-03: no invoice line before 2024-03-05: the first \
             invoiced price is assumed"
                .to_string(),
            "sub_h1 item si_h2: 2024-02..2024-06: no invoice line: the current price is assumed"
                .to_string(),
        ]
    );
    let log = log(dir);
    let o = |id: &str| outcome(&log, "invoices.json", id);
    assert_eq!(o("il_1"), ("merged".into(), "history".into()));
    assert_eq!(o("il_3a"), ("skipped".into(), "not_used".into()));
    assert_eq!(o("il_5"), ("skipped".into(), "one_off".into()));
    assert_eq!(
        outcome(&log, "customers.json", "cus_J"),
        ("mapped".into(), "customer".into())
    );
    assert_eq!(
        outcome(&log, "customers.json", "cus_K"),
        ("skipped".into(), "not_used".into())
    );
    let customers = rows(dir, "customers.csv");
    assert_eq!(customers["cus_J"]["name"], "Joana Souza");
    assert_eq!(customers["cus_J"]["registered_on"], "2024-01-04");
    let products = rows(dir, "products.csv");
    assert_eq!(products["prod_addon"]["name"], "Extra storage");
    assert_eq!(mrr_on(dir, "2024-02-29"), dec("75"));
    assert_eq!(mrr_on(dir, "2024-04-30"), dec("60"));
    assert_eq!(mrr_on(dir, "2024-06-30"), dec("90"));
}

// ----- not Stripe -----------------------------------------------------------------------

#[test]
fn a_table_without_stripe_columns_is_one_clear_problem() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("subscription.csv"),
        "id,name,amount\n1,Ana,10\n",
    )
    .unwrap();
    let (r, dir) = convert(tmp.path(), &options("UTC", false));
    let problems: Vec<String> = r.err().unwrap().0.iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        vec![
            "subscription.csv:1: customer_id: : no such column: is this a Stripe subscription \
             table? (the header has id, name, amount)"
                .to_string()
        ]
    );
    assert!(rows(dir.path(), "subscriptions.csv").is_empty());
}

#[test]
fn a_folder_without_subscriptions_says_what_it_expected() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("export.csv"), "a,b\n1,2\n").unwrap();
    let (r, _dir) = convert(tmp.path(), &options("UTC", false));
    let problems: Vec<String> = r.err().unwrap().0.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].contains(":0: file: : holds no Stripe subscriptions")
            && problems[0].ends_with("it has: export.csv"),
        "{problems:?}"
    );
}

#[test]
fn a_subscriptions_json_that_is_not_json_is_one_clear_problem() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("subscriptions.json"),
        "id,status\nsub_1,active\n",
    )
    .unwrap();
    let (r, _dir) = convert(tmp.path(), &options("UTC", false));
    let problems: Vec<String> = r.err().unwrap().0.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("subscriptions.json:1: json: : is not JSON: "),
        "{problems:?}"
    );
    std::fs::write(
        tmp.path().join("subscriptions.json"),
        "{\"object\": \"list\"}",
    )
    .unwrap();
    let (r, _dir) = convert(tmp.path(), &options("UTC", false));
    let problems: Vec<String> = r.err().unwrap().0.iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        vec![
            "subscriptions.json:0: json: : is not a list of Stripe subscriptions (a JSON array, \
             or a list object {\"object\": \"list\", \"data\": [...]})"
                .to_string()
        ]
    );
}

#[test]
fn an_amount_off_in_another_currency_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("api").join("subscriptions.json"))
        .unwrap()
        .replace(
            "\"currency\": \"usd\",\n     \"duration\": \"forever\"",
            "\"currency\": \"eur\",\n     \"duration\": \"forever\"",
        )
        .replace(
            "\"currency\": \"usd\",\n      \"duration\": \"forever\"",
            "\"currency\": \"eur\",\n      \"duration\": \"forever\"",
        );
    std::fs::write(tmp.path().join("subscriptions.json"), text).unwrap();
    let (r, _dir) = convert(tmp.path(), &options("America/Sao_Paulo", false));
    let problems: Vec<String> = r.unwrap_err().0.iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        vec![
            "subscriptions.json:7: coupon: LOYAL15: coupon LOYAL15 takes an amount off in EUR, \
             but the line's price is in USD"
                .to_string()
        ]
    );
    // Left out, the line keeps its full price.
    let (r, dir) = convert(tmp.path(), &options("America/Sao_Paulo", true));
    r.unwrap_or_else(|e| panic!("{:?}", e.0));
    line(
        &rows(dir.path(), "subscriptions.csv"),
        "si_7",
        &[("unit_price", "100"), ("discount_pct", "")],
    );
}

#[test]
fn an_amount_off_that_is_not_exact_per_unit_is_refused() {
    // 10.00 off each invoice of 3 units: 3.333… per unit cannot be written exactly.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("subscriptions.json"),
        r#"{"object": "list", "data": [{"id": "sub_x", "object": "subscription",
            "status": "active", "customer": "cus_x", "start_date": 1704067200,
            "items": {"object": "list", "data": [{"id": "si_x", "quantity": 3,
              "price": {"id": "price_x", "product": "prod_x", "currency": "usd",
                "type": "recurring", "unit_amount": 1000,
                "recurring": {"interval": "month", "interval_count": 1,
                  "usage_type": "licensed"}}}]},
            "discount": {"id": "di_x", "start": 1704067200,
              "coupon": {"id": "TEN", "amount_off": 1000, "currency": "usd",
                "duration": "once"}}}]}"#,
    )
    .unwrap();
    let (r, _dir) = convert(tmp.path(), &options("UTC", false));
    let problems: Vec<String> = r.unwrap_err().0.iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        vec![
            "subscriptions.json:1: coupon: TEN: coupon TEN takes 10 off each invoice of a \
             quantity of 3: not an exact amount per unit, so no exact unit price can be \
             written"
                .to_string()
        ]
    );
}

#[test]
fn lines_in_a_currency_the_book_cannot_read_are_refused_at_the_source() {
    // Without rates, a yen line in a USD book: one problem naming the currencies and the
    // flags, not the importer's problem with the written file.
    let o = Options {
        fx_rates: None,
        ..options("America/Sao_Paulo", false)
    };
    let (r, _dir) = convert(&fixture("api"), &o);
    let problems: Vec<String> = r.unwrap_err().0.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].ends_with(
            ":0: currency: : the source's lines are 1 in JPY but the book's currency is USD: \
             give --currency and --fx-rates FILE (month,currency,rate: what one unit of each \
             currency is worth in the book's currency, each month)"
        ),
        "{problems:?}"
    );
    // A book all in one other currency names the --currency to give.
    let o = Options {
        currency: Currency::from_code("BRL").unwrap(),
        fx_rates: None,
        ..options("UTC", false)
    };
    let (r, _dir) = convert(&fixture("warehouse"), &o);
    let problems: Vec<String> = r.unwrap_err().0.iter().map(ToString::to_string).collect();
    assert!(
        problems[0].contains("but the book's currency is BRL: give --currency USD"),
        "{problems:?}"
    );
}

#[test]
fn a_subscription_object_is_not_counted_beside_its_items() {
    // In API JSON a subscription's items are nested in its object: the items are reported
    // (each at the subscription's position in the list), the object itself not again.
    let (r, dir) = convert(&fixture("api"), &options("America/Sao_Paulo", false));
    r.unwrap_or_else(|e| panic!("{:?}", e.0));
    let log = std::fs::read_to_string(dir.path().join("conversion.csv")).unwrap();
    let merged_subs: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("subscriptions.json,") && l.contains(",merged,recurring,"))
        .collect();
    assert!(merged_subs.is_empty(), "{merged_subs:?}");
    // One outcome per row: no (line, outcome, reason) twice for one subscription object whose
    // one item is skipped with it (sub_8, incomplete_expired, has one item).
    let sub8: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("subscriptions.json,8,"))
        .collect();
    assert_eq!(sub8.len(), 1, "{sub8:?}");
    assert!(log
        .lines()
        .any(|l| l.starts_with("subscriptions.json,") && l.contains(",mapped,recurring,")));
}

#[test]
fn discounts_as_ids_take_the_expanded_legacy_discount_and_refuse_the_others() {
    // An event's subscription lists `discounts` as ids; the legacy `discount` beside them is
    // the expanded object of one of them: it applies. An id without its object is refused.
    let tmp = tempfile::tempdir().unwrap();
    let subscription = |discounts: &str| {
        format!(
            r#"{{"object": "list", "data": [{{"id": "sub_d", "object": "subscription",
            "status": "active", "customer": "cus_d", "start_date": 1704067200,
            "items": {{"object": "list", "data": [{{"id": "si_d", "quantity": 1,
              "price": {{"id": "price_d", "product": "prod_d", "currency": "usd",
                "type": "recurring", "unit_amount": 1000,
                "recurring": {{"interval": "month", "interval_count": 1,
                  "usage_type": "licensed"}}}}}}]}},
            "discounts": {discounts},
            "discount": {{"id": "di_d", "start": 1704067200,
              "coupon": {{"id": "HALF", "percent_off": 50, "duration": "forever"}}}}}}]}}"#
        )
    };
    std::fs::write(
        tmp.path().join("subscriptions.json"),
        subscription(r#"["di_d"]"#),
    )
    .unwrap();
    let (r, dir) = convert(tmp.path(), &options("UTC", false));
    r.unwrap_or_else(|e| panic!("{:?}", e.0));
    line(
        &rows(dir.path(), "subscriptions.csv"),
        "si_d",
        &[("unit_price", "10"), ("discount_pct", "50")],
    );
    std::fs::write(
        tmp.path().join("subscriptions.json"),
        subscription(r#"["di_d", "di_other"]"#),
    )
    .unwrap();
    let (r, _dir) = convert(tmp.path(), &options("UTC", false));
    let problems: Vec<String> = r.unwrap_err().0.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("di_other") && problems[0].contains("not expanded"),
        "{problems:?}"
    );
}
