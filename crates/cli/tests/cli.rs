//! End-to-end tests of the `expansa` command line: each command, each format, and the errors.

mod common;

use common::{check_fails_with, expansa, movements_json};
use predicates::prelude::*;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn golden(name: &str) -> PathBuf {
    root().join("testdata/golden").join(name)
}

/// Writes a book into a fresh temporary folder.
fn book(files: &[(&str, &str)]) -> tempdir::Dir {
    let dir = tempdir::Dir::new();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

mod tempdir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    /// A folder removed when dropped.
    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            let n = NEXT.fetch_add(1, Ordering::SeqCst);
            let path = std::env::temp_dir().join(format!("expansa-cli-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn table_in_portuguese_and_english() {
    expansa()
        .args(["movements", "--data"])
        .arg(golden("conexa-february"))
        .args(["--from", "2024-01", "--to", "2024-02", "--locale", "pt-BR"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Cross-sell"))
        .stdout(predicate::str::contains("R$ 2.100,00"))
        .stdout(predicate::str::contains("R$ 700,00"))
        .stdout(predicate::str::contains("MRR final"));
    expansa()
        .args(["movements", "--data"])
        .arg(golden("conexa-february"))
        .args(["--from", "2024-01", "--to", "2024-02", "--locale", "en"])
        .assert()
        .success()
        .stdout(predicate::str::contains("R$2,100.00"))
        .stdout(predicate::str::contains("MRR end"));
}

#[test]
fn locale_defaults_from_the_environment() {
    expansa()
        .env("LANG", "en_US.UTF-8")
        .args(["movements", "--data"])
        .arg(golden("conexa-february"))
        .args(["--from", "2024-02", "--to", "2024-02"])
        .assert()
        .success()
        .stdout(predicate::str::contains("R$2,100.00"));
    expansa()
        .env("LANG", "pt_BR.UTF-8")
        .args(["movements", "--data"])
        .arg(golden("conexa-february"))
        .args(["--from", "2024-02", "--to", "2024-02"])
        .assert()
        .success()
        .stdout(predicate::str::contains("R$ 2.100,00"));
}

#[test]
fn csv_output() {
    let out = expansa()
        .args(["movements", "--data"])
        .arg(golden("conexa-february"))
        .args(["--from", "2024-01", "--to", "2024-03", "--format", "csv"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "month,mrr_start,new,cross_sell,upsell,reactivation,downsell,churn,mrr_end,customers_start,customers_end,fx,entering_segment,leaving_segment",
            "2024-01,0.00,1000.00,0.00,0.00,0.00,0.00,0.00,1000.00,0,2,0.00,0.00,0.00",
            "2024-02,1000.00,400.00,700.00,0.00,0.00,0.00,0.00,2100.00,2,3,0.00,0.00,0.00",
            "2024-03,2100.00,0.00,0.00,0.00,0.00,0.00,0.00,2100.00,3,3,0.00,0.00,0.00",
        ]
    );
}

#[test]
fn chartmogul_rules_single_month() {
    let v = movements_json(
        &golden("presets"),
        &[
            "--from",
            "2024-02",
            "--to",
            "2024-02",
            "--rules",
            "chartmogul",
        ],
    );
    assert_eq!(v["rules"], "chartmogul");
    assert_eq!(v["months"][0]["cross_sell"], "129.00");
    assert_eq!(v["months"][0]["new"], "160.00");
}

#[test]
fn explain_prints_the_trail_and_it_sums_to_the_report() {
    expansa()
        .args(["movements", "--data"])
        .arg(golden("plan-switch"))
        .args([
            "--from",
            "2024-01",
            "--to",
            "2024-04",
            "--explain",
            "A",
            "--locale",
            "en",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("Upsell"))
        .stdout(predicate::str::contains("a2 a1"))
        .stdout(predicate::str::contains("R$150.00"));
    let v = movements_json(
        &golden("conexa-february"),
        &["--from", "2024-01", "--to", "2024-02", "--explain", "Z"],
    );
    assert_eq!(v["customer"], "Z");
    let moves = v["movements"].as_array().unwrap();
    assert_eq!(moves.len(), 2);
    assert_eq!(moves[0]["kind"], "new");
    assert_eq!(moves[0]["lines"], serde_json::json!(["z1"]));
    assert_eq!(moves[1]["kind"], "cross_sell");
    assert_eq!(moves[1]["amount"], "500.00");
    assert_eq!(moves[1]["lines"], serde_json::json!(["z2"]));
}

#[test]
fn explain_csv_and_unknown_customer() {
    expansa()
        .args(["movements", "--data"])
        .arg(golden("reactivation"))
        .args(["--from", "2024-01", "--to", "2024-06", "--explain", "R", "--format", "csv"])
        .assert()
        .success()
        .stdout(predicate::str::diff(
            "customer,month,kind,amount,lines\nR,2024-01,new,100.00,r1\nR,2024-03,churn,-100.00,r1\nR,2024-05,reactivation,120.00,r2\n",
        ));
    expansa()
        .args(["movements", "--data"])
        .arg(golden("reactivation"))
        .args([
            "--from",
            "2024-01",
            "--to",
            "2024-06",
            "--explain",
            "nobody",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown customer \"nobody\""));
}

#[test]
fn check_summarises_a_good_book() {
    expansa()
        .args(["check", "--data"])
        .arg(golden("foreign-currency"))
        .assert()
        .success()
        .stdout(predicate::str::starts_with("ok: 1 customers"))
        .stdout(predicate::str::contains("2 lines"))
        .stdout(predicate::str::contains("3 fx rates"));
}

#[test]
fn check_lists_every_problem_and_exits_non_zero() {
    let dir = book(&[
        ("customers.csv", "id,name\nc1,Um\nc1,Dois\n"),
        (
            "subscriptions.csv",
            "id,customer_id,product_id,quantity,unit_price,discount_pct,billing_period_months,start_date,end_date,currency,revises\n\
             l1,c1,p,-1,10,0,1,2024-01-01,,,\n\
             l2,c1,p,1,abc,150,0,2024-13-01,,,\n\
             l3,c1,p,1,10,0,1,2024-03-01,2024-02-01,,\n\
             l1,c1,p,1,10,0,1,2024-01-01,,,\n\
             l4,ghost,p,1,10,0,1,2024-01-01,,,\n\
             l5,c1,p,1,10,0,1,2024-01-01,,EUR,\n\
             l6,c1,p,1,10,0,1,2024-01-01,,XXX,\n\
             l7,c1,p,1,10,0,1,2024-01-01,,,nope\n\
             l8,c1,p,1,,0,1,2024-01-01,,,\n",
        ),
    ]);
    let out = expansa()
        .args(["check", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing on stdout for a bad book");
    let err = String::from_utf8(out.stderr).unwrap();
    for expected in [
        "subscriptions.csv:2: quantity: -1: must not be negative",
        "subscriptions.csv:3: unit_price: abc: not a decimal number",
        "subscriptions.csv:3: discount_pct: 150: must be between 0 and 100",
        "subscriptions.csv:3: billing_period_months: 0: must be at least 1",
        "subscriptions.csv:3: start_date: 2024-13-01: not a date",
        "subscriptions.csv:4: end_date: 2024-02-01: is before the start (2024-03-01)",
        "subscriptions.csv:5: id: l1: duplicate line id (first on line 2)",
        "subscriptions.csv:6: customer_id: ghost: unknown customer (not in customers.csv)",
        "subscriptions.csv:7: currency: EUR: no rate in fx_rates.csv for EUR to BRL in any month (1 line): add EUR rates",
        "subscriptions.csv:8: currency: XXX: unknown ISO 4217 currency code",
        "subscriptions.csv:9: revises: nope: names an unknown line",
        "subscriptions.csv:10: unit_price: : required value is missing",
        "customers.csv:3: id: c1: duplicate customer id (first on line 2)",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(
        err.contains("error: the book has 13 problem(s); nothing was loaded"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 14, "{err}");
}

#[test]
fn revises_of_another_customer_and_missing_columns() {
    let dir = book(&[(
        "subscriptions.csv",
        "id,customer_id,product_id,unit_price,start_date,revises\n\
         a,c1,p,10,2024-01-01,\n\
         b,c2,p,10,2024-02-01,a\n",
    )]);
    check_fails_with(
        dir.path(),
        &["subscriptions.csv:3: revises: a: names a line of another customer (c1)"],
    );
    let dir = book(&[("subscriptions.csv", "id,customer_id,unit_price\na,c1,10\n")]);
    check_fails_with(
        dir.path(),
        &[
            "subscriptions.csv:1: product_id: : required column is missing from the header",
            "subscriptions.csv:1: start_date: : required column is missing from the header",
        ],
    );
}

#[test]
fn missing_book_and_missing_subscriptions() {
    expansa()
        .args(["check", "--data", "/definitely/not/here"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "/definitely/not/here:0: folder: : is not a folder",
        ));
    let dir = book(&[("customers.csv", "id\nc1\n")]);
    check_fails_with(
        dir.path(),
        &["subscriptions.csv:0: file: : required file is missing from the book folder"],
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    expansa()
        .args(["movements", "--data"])
        .arg(golden("reactivation"))
        .args(["--from", "2024-05", "--to", "2024-01"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--from 2024-05 is after --to 2024-01",
        ));
    expansa()
        .args(["movements", "--data"])
        .arg(golden("reactivation"))
        .args(["--from", "2024-5", "--to", "2024-06"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a month"));
    expansa()
        .args(["movements", "--data"])
        .arg(golden("reactivation"))
        .args(["--from", "2024-01", "--to", "2024-06", "--currency", "ABC"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown ISO 4217 currency code"));
    expansa()
        .args(["movements", "--data"])
        .arg(golden("reactivation"))
        .args(["--from", "2024-01", "--to", "2024-06", "--rules", "other"])
        .assert()
        .code(2);
}

#[test]
fn semicolon_files_with_decimal_commas() {
    let dir = book(&[(
        "subscriptions.csv",
        "\u{feff}ID;Customer_ID;Product_ID;Quantity;Unit_Price;Start_Date\n\
         a;c1;p;1;1.234,56;2024-01-01\n\
         b;c2;p;2;\"10,5\";2024-01-01\n",
    )]);
    let v = movements_json(dir.path(), &["--from", "2024-01", "--to", "2024-01"]);
    assert_eq!(v["months"][0]["new"], "1255.56");
    let dir = book(&[(
        "subscriptions.csv",
        "id;customer_id;product_id;unit_price;start_date\na;c1;p;1.234;2024-01-01\n",
    )]);
    check_fails_with(dir.path(), &["unit_price: 1.234: ambiguous"]);
}

#[test]
fn other_currency_for_reporting() {
    let dir = book(&[
        ("fx_rates.csv", "month,currency,rate\n2024-01,BRL,0.2\n"),
        (
            "subscriptions.csv",
            "id,customer_id,product_id,unit_price,currency,start_date\na,c1,p,100,USD,2024-01-01\nb,c2,p,50,BRL,2024-01-01\n",
        ),
    ]);
    let v = movements_json(
        dir.path(),
        &["--from", "2024-01", "--to", "2024-01", "--currency", "usd"],
    );
    assert_eq!(v["currency"], "USD");
    assert_eq!(v["months"][0]["new"], "110.00");
}

#[test]
fn demo_book_runs() {
    let v = movements_json(
        &root().join("examples/demo"),
        &["--from", "2024-01", "--to", "2024-12"],
    );
    let months = v["months"].as_array().unwrap();
    assert_eq!(months.len(), 12);
    common::assert_every_movement_kind(months, "the demo book in 2024");
}

#[test]
fn kpis_in_every_format() {
    let demo = root().join("examples/demo");
    expansa()
        .args(["kpis", "--data"])
        .arg(&demo)
        .args(["--from", "2024-01", "--to", "2024-03", "--locale", "en"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Customer churn rate"))
        .stdout(predicate::str::contains("R$25,023.00"))
        .stdout(predicate::str::contains("105.86%"));
    expansa()
        .args(["kpis", "--data"])
        .arg(&demo)
        .args(["--from", "2024-03", "--to", "2024-03", "--locale", "pt-BR"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Churn de clientes"))
        .stdout(predicate::str::contains("105,86%"));
    let out = expansa()
        .args(["kpis", "--data"])
        .arg(&demo)
        .args(["--from", "2024-03", "--to", "2024-03", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let march = &v["months"][0];
    // Hand-checked on the demo: customers paying in 2023-03 had 5291.00 of MRR then and
    // 5601.00 now (4901.00 capped at their old MRR).
    assert_eq!(march["nrr_12m"], "1.0586");
    assert_eq!(march["grr_12m"], "0.9263");
    assert_eq!(march["cac"], "2450.00");
    assert!(v["notes"].is_array());
    let out = expansa()
        .args(["kpis", "--data"])
        .arg(&demo)
        .args(["--from", "2024-01", "--to", "2024-02", "--format", "csv"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("month,mrr,arr,customers,arpa,"), "{text}");
    assert_eq!(text.lines().count(), 3);
}

#[test]
fn cohorts_and_filters() {
    let demo = root().join("examples/demo");
    let out = expansa()
        .args(["cohorts", "--data"])
        .arg(&demo)
        .args(["--from", "2024-01", "--to", "2024-06", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["by"], "month");
    assert_eq!(v["cohorts"][0]["cohort"], "2024-01");
    assert_eq!(v["cohorts"][0]["customers"], 2);
    assert_eq!(v["cohorts"][0]["cells"][0], "1.0000");
    expansa()
        .args(["cohorts", "--data"])
        .arg(&demo)
        .args([
            "--from",
            "2023-01",
            "--to",
            "2024-12",
            "--by",
            "quarter",
            "--metric",
            "customers",
            "--locale",
            "en",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("2023-Q1"))
        .stdout(predicate::str::contains("Cohort"));
    // Segments partition the customers: their reports add up to the whole.
    let whole = movements_json(&demo, &["--from", "2024-01", "--to", "2024-12"]);
    let mut sum = [rust_decimal::Decimal::ZERO; 12];
    for segment in ["mei", "simples", "lucro-presumido"] {
        let part = movements_json(
            &demo,
            &[
                "--from",
                "2024-01",
                "--to",
                "2024-12",
                "--where",
                &format!("segment={segment}"),
            ],
        );
        for (i, m) in part["months"].as_array().unwrap().iter().enumerate() {
            sum[i] += m["mrr_end"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap();
        }
    }
    for (i, m) in whole["months"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            m["mrr_end"].as_str().unwrap(),
            sum[i].to_string(),
            "{}",
            m["month"]
        );
    }
    let folha = movements_json(
        &demo,
        &[
            "--from",
            "2024-04",
            "--to",
            "2024-04",
            "--where",
            "family=folha",
        ],
    );
    assert_eq!(folha["months"][0]["upsell"], "70.00");
    assert_eq!(folha["months"][0]["reactivation"], "0.00");
    expansa()
        .args(["movements", "--data"])
        .arg(&demo)
        .args([
            "--from",
            "2024-01",
            "--to",
            "2024-02",
            "--where",
            "colour=red",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "--where colour=...: unknown filter",
        ));
    expansa()
        .args(["kpis", "--data"])
        .arg(&demo)
        .args(["--from", "2024-01", "--to", "2024-02", "--where", "segment"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--where segment: expected KEY=VALUE",
        ));
}

#[test]
fn charts_as_svg_and_png() {
    let demo = root().join("examples/demo");
    let dir = tempdir::Dir::new();
    let svg = dir.path().join("movements.svg");
    expansa()
        .args(["movements", "--data"])
        .arg(&demo)
        .args([
            "--from", "2024-01", "--to", "2024-12", "--locale", "pt-BR", "--chart",
        ])
        .arg(&svg)
        .assert()
        .success()
        .stdout(predicate::str::contains("R$ 33.425,90"));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..80.min(text.len())]);
    for label in [
        "Movimentos de MRR",
        "Cross-sell",
        "Reativação",
        "2024-03",
        "R$ 30.000",
    ] {
        assert!(text.contains(label), "the SVG has no {label:?}");
    }
    let png = dir.path().join("kpis.png");
    expansa()
        .args(["kpis", "--data"])
        .arg(&demo)
        .args([
            "--from", "2024-01", "--to", "2024-12", "--locale", "en", "--chart",
        ])
        .arg(&png)
        .assert()
        .success();
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // IHDR: width and height, big-endian, right after the chunk's length and type.
    assert_eq!(&bytes[16..24], &[0, 0, 4, 76, 0, 0, 2, 188]); // 1100 x 700
    assert!(
        bytes.len() > 20_000,
        "a chart with lines and text, not a blank page"
    );
    expansa()
        .args(["kpis", "--data"])
        .arg(&demo)
        .args(["--from", "2024-01", "--to", "2024-02", "--chart", "out.gif"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--chart out.gif: the file must end in .svg or .png",
        ));
}
