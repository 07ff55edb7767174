//! End to end: `contract show`, `quote amend`, `quote renew`, and recording quotes in a store
//! with `--apply` (idempotent), `import`, `export`, `events` and `--as-of`.

mod common;

use common::{expansa, store_urls};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn book() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/contracts")
}

fn json(args: &[&str]) -> Value {
    let out = expansa()
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fails(args: &[&str], code: i32, message: &str) {
    let out = expansa().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(stderr.contains(message), "{args:?}: {stderr}");
}

#[test]
fn amend_json_has_the_issue_shape_and_the_cpq_numbers() {
    let data = book();
    let d = data.to_str().unwrap();
    let q = json(&[
        "quote",
        "amend",
        "--data",
        d,
        "--contract",
        "K1",
        "--effective",
        "2024-01-23",
        "--add",
        "SEAT:1",
        "--add",
        "BIG:1",
    ]);
    assert_eq!(q["contract"], "K1");
    assert_eq!(q["effective"], "2024-01-23");
    assert_eq!(q["end"], "2024-11-12");
    assert_eq!(q["precision"], "month_day");
    let lines = q["lines"].as_array().unwrap();
    for key in [
        "product_id",
        "prior_quantity",
        "quantity",
        "effective_quantity",
        "unit_price",
        "prorate_multiplier",
        "prorated_unit_price",
        "net_total",
    ] {
        assert!(lines[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(lines[0]["prorate_multiplier"], "0.8075342466");
    assert_eq!(lines[0]["prorated_unit_price"], "321.76");
    assert_eq!(lines[1]["net_total"], "8044.00");
    assert_eq!(
        q["totals"],
        serde_json::json!([{"currency": "BRL", "total": "8365.76"}])
    );
    assert_eq!(
        q["total_in_reporting_currency"],
        serde_json::json!({"currency": "BRL", "total": "8365.76", "rates_of": "2024-01"})
    );
    assert_eq!(q["reporting_currency"], "BRL");
    assert_eq!(
        (
            &lines[0]["line_id"],
            &lines[0]["start"],
            &lines[0]["end"],
            &lines[0]["currency"]
        ),
        (
            &serde_json::json!("L1"),
            &serde_json::json!("2024-01-23"),
            &serde_json::json!("2024-11-12"),
            &serde_json::json!("BRL")
        )
    );
    assert_eq!(lines[1]["line_id"], serde_json::Value::Null);
    assert_eq!(q["mrr_before"], "166.02");

    let q = json(&[
        "quote",
        "amend",
        "--data",
        d,
        "--contract",
        "K2",
        "--effective",
        "2024-02-05",
        "--add",
        "ADDON:1",
    ]);
    assert_eq!(q["lines"][0]["prorate_multiplier"], "0.9906392694");
    assert_eq!(q["totals"][0]["total"], "118.88");
    let q = json(&[
        "quote",
        "amend",
        "--data",
        d,
        "--contract",
        "K3",
        "--effective",
        "2023-10-03",
        "--swap",
        "PLAN_S:PLAN_L",
    ]);
    assert_eq!(q["lines"][0]["net_total"], "-1000.00");
    assert_eq!(q["lines"][1]["net_total"], "2000.00");
    let q = json(&["quote", "renew", "--data", d, "--contract", "K4"]);
    assert_eq!(q["lines"][0]["prorate_multiplier"], "12.0000000000");
    assert_eq!(q["totals"][0]["total"], "1440.00");
    let q = json(&[
        "quote",
        "renew",
        "--data",
        d,
        "--contract",
        "K1",
        "--pricing",
        "uplift",
        "--uplift",
        "10",
    ]);
    assert_eq!(q["totals"][0]["total"], "2191.50");
    // A negative uplift, given either way: 398.45 x 0.95 = 378.5275, 378.53 a unit (CPQ rounds
    // the unit price), x 5 = 1892.65.
    for flag in [&["--uplift", "-5"][..], &["--uplift=-5"][..]] {
        let mut args = vec![
            "quote",
            "renew",
            "--data",
            d,
            "--contract",
            "K1",
            "--pricing",
            "uplift",
        ];
        args.extend_from_slice(flag);
        let q = json(&args);
        assert_eq!(q["totals"][0]["total"], "1892.65", "{flag:?}");
    }
    fails(
        &[
            "quote",
            "renew",
            "--data",
            d,
            "--contract",
            "K1",
            "--pricing",
            "uplift",
            "--uplift",
            "-100",
        ],
        2,
        "--uplift -100: must be more than -100",
    );
}

/// A contract whose renewal uplift is -100% or less is refused by `check`, as the quote
/// refuses the flag.
#[test]
fn an_uplift_of_minus_100_is_refused_in_the_book() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(book()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let text = std::fs::read_to_string(dir.path().join("contracts.csv")).unwrap();
    let header = text.lines().next().unwrap().to_string();
    let columns: Vec<&str> = header.split(',').collect();
    let k = columns
        .iter()
        .position(|c| *c == "renewal_uplift_pct")
        .expect("the contracts book has renewal_uplift_pct");
    let p = columns
        .iter()
        .position(|c| *c == "renewal_pricing")
        .unwrap();
    let mut out = vec![header.clone()];
    for (i, line) in text.lines().skip(1).enumerate() {
        let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
        if i == 0 {
            cells[p] = "uplift".into();
            cells[k] = "-100".into();
        }
        out.push(cells.join(","));
    }
    std::fs::write(dir.path().join("contracts.csv"), out.join("\n") + "\n").unwrap();
    let o = common::expansa()
        .args(["check", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "contracts.csv:2: renewal_uplift_pct: -100: must be more than -100 (a renewal at -100% or less is free or negative)"
        ),
        "{err}"
    );
}

#[test]
fn quotes_and_contracts_also_render_csv() {
    let data = book();
    let d = data.to_str().unwrap();
    let out = run(&[
        "quote",
        "amend",
        "--data",
        d,
        "--contract",
        "K3",
        "--effective",
        "2023-10-03",
        "--swap",
        "PLAN_S:PLAN_L",
        "--format",
        "csv",
    ]);
    assert_eq!(
        out,
        "product_id,prior_quantity,quantity,effective_quantity,unit_price,price_term_months,prorate_multiplier,prorated_unit_price,net_total,currency,line_id,start,end\n\
         PLAN_S,1,0,-1,1200.00,12,0.8333333333,1000.00,-1000.00,BRL,L3,2023-10-03,2024-08-02\n\
         PLAN_L,0,1,1,2400.00,12,0.8333333333,2000.00,2000.00,BRL,,2023-10-03,2024-08-02\n"
    );
    let out = run(&[
        "contract",
        "show",
        "--data",
        d,
        "--contract",
        "K6",
        "--at",
        "2024-09-01",
        "--format",
        "csv",
    ]);
    assert!(out.starts_with("line_id,product_id,quantity"), "{out}");
    assert!(
        // billing_interval and billing_interval_count last (docs/contracts.md)
        out.contains(
            "\nL6,SEAT,2,40.00,10,1,12,432.00,72.00,2024-03-01,2025-02-28,month,1,BRL,true\n"
        ),
        "{out}"
    );
}

#[test]
fn contract_show_lists_held_lines() {
    let data = book();
    let v = json(&[
        "contract",
        "show",
        "--data",
        data.to_str().unwrap(),
        "--contract",
        "K6",
        "--at",
        "2024-09-01",
    ]);
    assert_eq!(v["start"], "2024-03-01");
    assert_eq!(v["end"], "2025-02-28");
    assert_eq!(v["lines"][0]["term_unit_price"], "432.00");
    assert_eq!(v["mrr"], "72.00");
    let out = expansa()
        .args([
            "contract",
            "show",
            "--data",
            data.to_str().unwrap(),
            "--contract",
            "K5",
            "--locale",
            "en",
            "--at",
            "2024-06-01",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("evergreen"), "{text}");
    assert!(text.contains("L5"), "{text}");
}

#[test]
fn bad_quotes_are_refused_with_a_reason() {
    let data = book();
    let d = data.to_str().unwrap();
    fails(
        &[
            "quote",
            "amend",
            "--data",
            d,
            "--contract",
            "K1",
            "--effective",
            "2025-01-01",
            "--add",
            "SEAT:1",
        ],
        1,
        "outside contract K1",
    );
    fails(
        &[
            "quote",
            "amend",
            "--data",
            d,
            "--contract",
            "NOPE",
            "--effective",
            "2024-01-23",
            "--add",
            "SEAT:1",
        ],
        1,
        "unknown contract",
    );
    fails(
        &[
            "quote",
            "amend",
            "--data",
            d,
            "--contract",
            "K1",
            "--effective",
            "2024-01-23",
            "--add",
            "NOPE:1",
        ],
        1,
        "unknown product",
    );
    fails(
        &[
            "quote",
            "amend",
            "--data",
            d,
            "--contract",
            "K1",
            "--effective",
            "2024-01-23",
            "--set",
            "SEAT:-2",
        ],
        1,
        "below zero",
    );
    fails(
        &[
            "quote",
            "amend",
            "--data",
            d,
            "--contract",
            "K5",
            "--effective",
            "2024-06-01",
            "--add",
            "PLAN_S:1",
        ],
        1,
        "evergreen",
    );
    fails(
        &["quote", "renew", "--data", d, "--contract", "K5"],
        1,
        "never renews",
    );
    fails(
        &[
            "quote",
            "amend",
            "--data",
            d,
            "--contract",
            "K1",
            "--effective",
            "2024-01-23",
        ],
        2,
        "nothing to quote",
    );
    fails(
        &[
            "quote",
            "amend",
            "--data",
            d,
            "--contract",
            "K1",
            "--effective",
            "2024-01-23",
            "--add",
            "SEAT",
        ],
        2,
        "PRODUCT:QTY",
    );
    fails(
        &[
            "quote",
            "amend",
            "--data",
            d,
            "--contract",
            "K1",
            "--effective",
            "2024-01-23",
            "--add",
            "SEAT:x",
        ],
        2,
        "not a decimal",
    );
    fails(
        &[
            "quote",
            "amend",
            "--data",
            d,
            "--contract",
            "K1",
            "--effective",
            "2024-01-23",
            "--add",
            "SEAT:1",
            "--apply",
        ],
        2,
        "--db",
    );
    fails(
        &[
            "quote",
            "renew",
            "--data",
            d,
            "--contract",
            "K1",
            "--pricing",
            "same",
            "--uplift",
            "3",
        ],
        2,
        "--uplift goes with --pricing uplift",
    );
}

fn run(args: &[&str]) -> String {
    let out = expansa().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn apply_records_once_and_history_keeps_the_past() {
    let tmp = tempfile::tempdir().unwrap();
    let data = book();
    let d = data.to_str().unwrap();
    for url in store_urls(tmp.path()) {
        let db = url.as_str();
        let out = run(&[
            "import",
            "--data",
            d,
            "--db",
            db,
            "--actor",
            "ana",
            "--reason",
            "first load",
        ]);
        assert!(out.contains("recorded as event 1"), "{out}");
        let out = run(&["import", "--data", d, "--db", db]);
        assert!(out.contains("no changes"), "{out}");

        let args = [
            "quote",
            "amend",
            "--db",
            db,
            "--contract",
            "K1",
            "--effective",
            "2024-01-23",
            "--add",
            "SEAT:10",
            "--apply",
            "--actor",
            "bia",
        ];
        let first = json(&args);
        // Event ids only grow (PostgreSQL's sequence skips the rolled-back no-op import).
        let event = first["applied"]["event"].as_i64().unwrap();
        assert!(event >= 2, "{first}");
        assert_eq!(first["applied"]["replayed"], false);
        let again = run(&args);
        assert!(
            again.contains(&format!("already applied as event {event}")),
            "{again}"
        );

        // The book now holds 15 seats from the 23rd; as of event 1 it held 5.
        let now = json(&[
            "contract",
            "show",
            "--db",
            db,
            "--contract",
            "K1",
            "--at",
            "2024-02-01",
        ]);
        assert_eq!(now["lines"][0]["quantity"], "15");
        assert_eq!(now["lines"][0]["line_id"], "L1-A20240123");
        let then = json(&[
            "contract",
            "show",
            "--db",
            db,
            "--as-of",
            "event:1",
            "--contract",
            "K1",
            "--at",
            "2024-02-01",
        ]);
        assert_eq!(then["lines"][0]["quantity"], "5");

        // The movement report from the store shows the seats as upsell in January 2024.
        let m = json(&[
            "movements",
            "--db",
            db,
            "--from",
            "2024-01",
            "--to",
            "2024-01",
        ]);
        let upsell = m["months"][0]["upsell"].as_str().unwrap().to_string();
        assert_eq!(upsell, "332.04", "{m}");

        let events = json(&["events", "--db", db]);
        let list = events.as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["actor"], "ana");
        assert_eq!(list[0]["reason"], "first load");
        assert_eq!(list[1]["actor"], "bia");
        assert_eq!(list[1]["kind"], "amend");
        assert_eq!(list[1]["id"], event);
        assert_eq!(list[1]["detail"]["subscriptions.csv"]["added"], 1);

        // Export, and the exported folder reads as the same book as the store.
        let out_dir = tmp.path().join(format!("export-{}", db.len()));
        run(&["export", "--db", db, "--out", out_dir.to_str().unwrap()]);
        let from_files = json(&[
            "movements",
            "--data",
            out_dir.to_str().unwrap(),
            "--from",
            "2023-01",
            "--to",
            "2025-12",
        ]);
        let from_store = json(&[
            "movements",
            "--db",
            db,
            "--from",
            "2023-01",
            "--to",
            "2025-12",
        ]);
        assert_eq!(from_files, from_store);
        let old_dir = tmp.path().join(format!("export-old-{}", db.len()));
        run(&[
            "export",
            "--db",
            db,
            "--as-of",
            "event:1",
            "--out",
            old_dir.to_str().unwrap(),
        ]);
        assert_eq!(
            std::fs::read_to_string(old_dir.join("subscriptions.csv"))
                .unwrap()
                .lines()
                .count(),
            7
        );

        // An explicit key: the same request again is a replay; another request under it is
        // refused and changes nothing.
        let keyed = |seats: &'static str| {
            [
                "quote",
                "amend",
                "--db",
                db,
                "--contract",
                "K2",
                "--effective",
                "2024-03-01",
                "--add",
                seats,
                "--apply",
                "--idempotency-key",
                "crm-4711",
            ]
        };
        let first = json(&keyed("SEAT:1"));
        assert_eq!(first["applied"]["replayed"], false, "{first}");
        let again = json(&keyed("SEAT:1"));
        assert_eq!(again["applied"]["replayed"], true, "{again}");
        assert_eq!(again["applied"]["event"], first["applied"]["event"]);
        fails(
            &keyed("SEAT:2"),
            1,
            "idempotency key was first used for a different request",
        );
        assert_eq!(json(&["events", "--db", db]).as_array().unwrap().len(), 3);

        // Amended again: the new line is named after the chain's first line and its day
        // (L1-A20240301, revising L1-A20240123), not after the whole chain.
        let second = json(&[
            "quote",
            "amend",
            "--db",
            db,
            "--contract",
            "K1",
            "--effective",
            "2024-03-01",
            "--add",
            "SEAT:1",
            "--apply",
        ]);
        assert!(second["applied"]["event"].is_number(), "{second}");
        let now = json(&[
            "contract",
            "show",
            "--db",
            db,
            "--contract",
            "K1",
            "--at",
            "2024-03-01",
        ]);
        assert_eq!(now["lines"][0]["line_id"], "L1-A20240301", "{now}");
        assert_eq!(now["lines"][0]["quantity"], "16", "{now}");
        let lines = tmp.path().join(format!("export-again-{}", db.len()));
        run(&["export", "--db", db, "--out", lines.to_str().unwrap()]);
        let csv = std::fs::read_to_string(lines.join("subscriptions.csv")).unwrap();
        assert!(
            csv.lines()
                .any(|l| l.starts_with("L1-A20240301,") && l.contains(",L1-A20240123,")),
            "{csv}"
        );
    }
}

#[test]
fn a_bad_import_lists_problems_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(
        bad.join("subscriptions.csv"),
        "id,customer_id,product_id,unit_price,start_date\nA,c1,P,12.x,2024-01-01\n",
    )
    .unwrap();
    let db = format!("sqlite:{}", tmp.path().join("s.db").display());
    fails(
        &["import", "--data", bad.to_str().unwrap(), "--db", &db],
        1,
        "subscriptions.csv:2: unit_price: 12.x",
    );
    fails(
        &[
            "movements",
            "--db",
            &db,
            "--from",
            "2024-01",
            "--to",
            "2024-02",
        ],
        1,
        "no book at that moment",
    );
    fails(
        &["movements", "--from", "2024-01", "--to", "2024-02"],
        2,
        "--data DIR",
    );
}

/// testdata/contracts-far-end: contracts running to 9999-12-31 (a common "no end" value).
fn far_end_book() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/contracts-far-end")
}

#[test]
fn quotes_on_a_contract_ending_9999_12_31_are_priced_or_refused_by_name() {
    let data = far_end_book();
    let d = data.to_str().unwrap();
    let amend = |add: &str| {
        [
            "quote",
            "amend",
            "--data",
            d,
            "--contract",
            "K9",
            "--effective",
            "2024-06-01",
            "--add",
            add,
        ]
        .map(String::from)
    };
    // 95707 whole months to 10000-01-01: 420.00 x 95707 / 12 = 3349745.00.
    let args = amend("SEAT:1");
    let q = json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(q["end"], "9999-12-31");
    assert_eq!(q["lines"][0]["prorate_multiplier"], "7975.5833333333");
    assert_eq!(q["lines"][0]["prorated_unit_price"], "3349745.00");
    assert_eq!(q["totals"][0]["total"], "3349745.00");
    let args = amend("SEAT:100000000000000000000000");
    fails(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        1,
        "contract K9 ends 9999-12-31: the prorated amount of SEAT",
    );
    let out = expansa()
        .args(args.iter().map(String::as_str))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("out of range"), "{stderr}");
    assert!(stderr.contains("over 7975 years and 7 months"), "{stderr}");
    assert!(stderr.contains("exceeds the largest amount"), "{stderr}");
}

#[test]
fn renewing_a_contract_ending_9999_12_31_says_why_not() {
    let data = far_end_book();
    let d = data.to_str().unwrap();
    fails(
        &["quote", "renew", "--data", d, "--contract", "K9"],
        1,
        "contract K9 ends 9999-12-31: a renewal would start after 9999-12-31",
    );
    fails(
        &["quote", "renew", "--data", d, "--contract", "K8"],
        1,
        "contract K8 ends 9999-06-30: its 12-month renewal from 9999-07-01 would end after 9999-12-31",
    );
    let q = json(&["quote", "renew", "--data", d, "--contract", "K7"]);
    assert_eq!(q["end"], "9999-12-31");
    assert_eq!(q["totals"][0]["total"], "1440.00");
}

/// The amendment classes of testdata/contracts-classes applied to a store (SQLite, and
/// PostgreSQL when given): a first-day amendment replaces its line outright, a ramped deal's
/// later segments get the new quantity, a swap into a product priced in another currency is
/// written in the line's currency; the book stays valid after each (the store validates the
/// whole book before it commits) and the past stays readable.
#[test]
fn amendment_classes_apply_and_leave_a_valid_book() {
    let tmp = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/contracts-classes");
    let d = data.to_str().unwrap();
    for url in store_urls(tmp.path()) {
        let db = url.as_str();
        run(&["import", "--data", d, "--db", db]);
        let apply = |contract: &str, effective: &str, change: &[&str]| {
            let mut args = vec![
                "quote",
                "amend",
                "--db",
                db,
                "--contract",
                contract,
                "--effective",
                effective,
                "--apply",
            ];
            args.extend_from_slice(change);
            json(&args)
        };
        let q = apply("KF", "2024-01-01", &["--add", "PWD:1"]);
        assert_eq!(
            q["totals"],
            serde_json::json!([{"currency": "USD", "total": "60.00"}])
        );
        let q = apply("KM", "2024-07-01", &["--add", "PLATFORM:2"]);
        assert_eq!(q["totals"][0]["total"], "6285.50");
        let q = apply("KC", "2024-07-01", &["--swap", "API:API_PRO"]);
        assert_eq!(q["total_in_reporting_currency"]["total"], "2880.00");
        let out = run(&["check", "--db", db]);
        assert!(out.starts_with("ok:"), "{out}");
        // A renewal is recorded once: under another idempotency key, the second is refused.
        let renew = |key: &str| {
            expansa()
                .args(["quote", "renew", "--db", db, "--contract", "KC", "--apply"])
                .args(["--idempotency-key", key, "--format", "json"])
                .output()
                .unwrap()
        };
        assert!(renew("first").status.success());
        let again = renew("second");
        let stderr = String::from_utf8_lossy(&again.stderr);
        assert!(!again.status.success(), "{stderr}");
        assert!(
            stderr.contains(
                "contract KC is already renewed in the book (by C1-R20250101, \
                 KC-A20240701-API_PRO-R20250101)"
            ),
            "{stderr}"
        );

        let show = |contract: &str, at: &str| {
            json(&[
                "contract",
                "show",
                "--db",
                db,
                "--contract",
                contract,
                "--at",
                at,
            ])
        };
        // LF itself now holds 6 licences from its first day.
        let kf = show("KF", "2024-01-01");
        assert_eq!(
            (&kf["lines"][0]["line_id"], &kf["lines"][0]["quantity"]),
            (&serde_json::json!("LF"), &serde_json::json!("6"))
        );
        // Every later segment holds 12 units at its own price.
        let km = show("KM", "2024-07-01");
        assert_eq!(km["lines"][0]["line_id"], "M1-A20240701");
        let later: Vec<(String, String, String)> = km["later"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["line_id"].as_str().unwrap().into(),
                    l["quantity"].as_str().unwrap().into(),
                    l["unit_price"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(
            later,
            [
                ("M2".into(), "12".into(), "1100.00".into()),
                ("M3".into(), "12".into(), "1210.00".into()),
                ("M4".into(), "12".into(), "1331.00".into()),
            ]
        );
        // API_PRO in USD, at the converted price, revising C2.
        let kc = show("KC", "2024-07-01");
        let pro = kc["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["product_id"] == "API_PRO")
            .unwrap()
            .clone();
        assert_eq!(
            (&pro["currency"], &pro["unit_price"], &pro["start"]),
            (
                &serde_json::json!("USD"),
                &serde_json::json!("1000.00"),
                &serde_json::json!("2024-07-01")
            )
        );
        // Before the amendments, as of the import, LF held 5.
        let then = json(&[
            "contract",
            "show",
            "--db",
            db,
            "--as-of",
            "event:1",
            "--contract",
            "KF",
            "--at",
            "2024-01-01",
        ]);
        assert_eq!(then["lines"][0]["quantity"], "5");
    }
}
