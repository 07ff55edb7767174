//! End to end: `expansa renewals` and the renewal KPIs of `kpis` on the hand-checked book of
//! testdata/renewals (NOTES.md), the limits of its flags, and `GET /api/v1/renewals` of a real
//! `expansa serve`, whose JSON is the CLI's; renewing from the desk (`POST
//! /api/v1/quotes/renew` with `apply`) needs a key and shows on the desk at once.

mod common;

use common::{command_json, expansa, serve};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn book() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/renewals")
}

fn renewals(args: &[&str]) -> Value {
    command_json("renewals", &book(), args)
}

/// `--where` keeps whole contracts: those of the kept customers (c3, c4, c6 are `saas`) holding
/// a kept product; an unknown key is an error, as in every report.
#[test]
fn the_desk_takes_where_filters() {
    let desk = renewals(&["--at", "2024-10-01", "--where", "segment=saas"]);
    let contracts: Vec<&str> = desk["renewals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["contract"].as_str().unwrap())
        .collect();
    assert_eq!(contracts, ["R6", "R3"]);
    let evergreen: Vec<&str> = desk["evergreen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["contract"].as_str().unwrap())
        .collect();
    assert_eq!(evergreen, ["R4"]);
    let out = expansa()
        .args(["renewals", "--data"])
        .arg(book())
        .args(["--where", "colour=red"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--where colour=...: unknown filter"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_desk_of_the_hand_checked_book() {
    let desk = renewals(&["--at", "2024-10-01"]);
    assert_eq!(desk["within"], 90);
    assert_eq!(
        (desk["from"].as_str(), desk["to"].as_str()),
        (Some("2024-07-03"), Some("2024-12-30"))
    );
    let rows: Vec<(String, String, i64, String, String, String)> = desk["renewals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["contract"].as_str().unwrap().to_string(),
                r["end"].as_str().unwrap().to_string(),
                r["days_left"].as_i64().unwrap(),
                r["arr"].as_str().unwrap().to_string(),
                r["quote"]["arr"].as_str().unwrap_or("-").to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("R2", "2024-08-15", -47, "1200.00", "1320.00", "churned"),
        ("R6", "2024-08-31", -31, "1200.00", "1200.00", "renewed"),
        ("R1", "2024-10-31", 30, "4200.00", "4200.00", "renewed"),
        ("R7", "2024-11-30", 60, "600.00", "-", "open"),
        ("R3", "2024-12-15", 75, "1800.00", "2100.00", "open"),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(c, e, d, a, q, s)| {
            (
                c.to_string(),
                e.to_string(),
                *d,
                a.to_string(),
                q.to_string(),
                s.to_string(),
            )
        })
        .collect();
    assert_eq!(rows, want);
    let r = |i: usize, k: &str| desk["renewals"][i][k].clone();
    assert_eq!(r(0, "pricing"), "uplift");
    assert_eq!(r(0, "uplift_pct"), "10");
    assert_eq!(r(0, "quote")["change"], "120.00");
    assert_eq!(r(4, "pricing"), "list");
    assert_eq!(r(4, "quote")["change"], "300.00");
    assert_eq!(r(2, "pricing"), "same");
    assert_eq!(r(2, "renewed_arr"), "5040.00");
    assert_eq!(r(1, "renewed_arr"), "1080.00");
    assert_eq!(r(1, "renewal_contracts"), serde_json::json!(["N6"]));
    assert!(r(3, "quote").is_null());
    assert_eq!(
        r(3, "quote_error"),
        "NOLIST: no price (no contracted price for the customer and no list_price in products.csv)"
    );
    assert_eq!(desk["evergreen"][0]["contract"], "R4");
    assert_eq!(desk["evergreen"][0]["arr"], "1200.00");
    let t = &desk["totals"];
    assert_eq!(
        (
            t["contracts"].as_u64(),
            t["arr"].as_str(),
            t["quoted_arr"].as_str(),
            t["renewed_arr"].as_str()
        ),
        (Some(5), Some("9000.00"), Some("8820.00"), Some("6120.00"))
    );
    assert_eq!(
        (
            t["renewed"].as_u64(),
            t["churned"].as_u64(),
            t["open"].as_u64()
        ),
        (Some(2), Some(1), Some(2))
    );
    // A narrower window: only R1 (30 days left) and nothing before.
    let near = renewals(&["--at", "2024-10-01", "--within", "30"]);
    let ids: Vec<&str> = near["renewals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["contract"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["R1"]);
}

#[test]
fn the_desk_prints_pt_br_and_english_tables() {
    let pt = expansa()
        .args(["renewals", "--data"])
        .arg(book())
        .args(["--at", "2024-10-01"])
        .output()
        .unwrap();
    assert!(pt.status.success());
    let pt = String::from_utf8(pt.stdout).unwrap();
    for want in [
        "Renovações em 2024-10-01",
        "R$ 4.200,00",
        "+R$ 300,00",
        "renovado",
        "perdido",
        "em aberto",
        "Contratos sem fim",
        "* sem cotação: R7",
    ] {
        assert!(pt.contains(want), "{want}:\n{pt}");
    }
    let en = expansa()
        .args(["renewals", "--locale", "en", "--data"])
        .arg(book())
        .args(["--at", "2024-10-01", "--format", "table"])
        .output()
        .unwrap();
    let en = String::from_utf8(en.stdout).unwrap();
    for want in [
        "Renewals at 2024-10-01",
        "R$4,200.00",
        "+R$300.00",
        "renewed",
        "churned",
        "open",
        "Evergreen contracts",
        "* not priced: R7",
    ] {
        assert!(en.contains(want), "{want}:\n{en}");
    }
    let csv = expansa()
        .args(["renewals", "--data"])
        .arg(book())
        .args(["--at", "2024-10-01", "--format", "csv"])
        .output()
        .unwrap();
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(
        csv.starts_with("customer_id,contract,end,days_left,arr,pricing,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 7, "{csv}");
}

#[test]
fn the_window_and_the_day_have_checked_limits() {
    let out = expansa()
        .args(["renewals", "--data"])
        .arg(book())
        .args(["--within", "3661"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("'--within <DAYS>': 3661: from 0 to 3660 days"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A negative window and a day the calendar lacks say so (not a clap range or a format).
    for (flag, value, said) in [
        ("--within", "-1", "-1: from 0 to 3660 days"),
        (
            "--at",
            "2023-02-29",
            "\"2023-02-29\": no such day in the calendar",
        ),
    ] {
        let out = expansa()
            .args(["renewals", "--data"])
            .arg(book())
            .arg(format!("{flag}={value}"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(said), "{stderr}");
    }
    let out = expansa()
        .args(["renewals", "--data"])
        .arg(book())
        .args(["--at", "0224-10-01"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = expansa()
        .args(["renewals", "--data"])
        .arg(book())
        .args(["--within", "-1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // The widest window reads the whole book, evergreen apart.
    let all = renewals(&["--at", "2024-10-01", "--within", "3660"]);
    assert_eq!(all["renewals"].as_array().unwrap().len(), 8);
}

#[test]
fn kpis_carry_the_months_renewals() {
    let k = command_json("kpis", &book(), &["--from", "2024-08", "--to", "2024-10"]);
    let m = |i: usize, key: &str| k["months"][i][key].clone();
    assert_eq!(m(0, "renewal_contracts"), 2);
    assert_eq!(m(0, "renewal_arr"), "2400.00");
    assert_eq!(m(0, "renewed_arr"), "1080.00");
    assert_eq!(m(0, "renewed_arr_gross"), "1080.00");
    assert_eq!(m(0, "gross_renewal_rate"), "0.4500");
    assert_eq!(m(0, "net_renewal_rate"), "0.4500");
    assert!(m(1, "gross_renewal_rate").is_null());
    assert!(m(1, "net_renewal_rate").is_null());
    assert_eq!(m(2, "renewal_arr"), "4200.00");
    assert_eq!(m(2, "renewed_arr"), "5040.00");
    assert_eq!(m(2, "renewed_arr_gross"), "4200.00");
    assert_eq!(m(2, "gross_renewal_rate"), "1.0000");
    assert_eq!(m(2, "net_renewal_rate"), "1.2000");
    assert!(k["notes"].as_array().unwrap().iter().any(|n| n
        .as_str()
        .unwrap()
        .starts_with("gross_renewal_rate and net_renewal_rate are null")));
    // A product filter keeps lines: SEAT only is R1 in October.
    let seat = command_json(
        "kpis",
        &book(),
        &[
            "--from",
            "2024-08",
            "--to",
            "2024-10",
            "--where",
            "product=SEAT",
        ],
    );
    assert_eq!(seat["months"][0]["renewal_arr"], "0.00");
    assert_eq!(seat["months"][2]["renewal_arr"], "4200.00");
    let csv = expansa()
        .args(["kpis", "--data"])
        .arg(book())
        .args(["--from", "2024-10", "--to", "2024-10", "--format", "csv"])
        .output()
        .unwrap();
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",contraction_rate,renewal_contracts,renewal_arr,renewed_arr,renewed_arr_gross,gross_renewal_rate,net_renewal_rate"), "{csv}");
}

/// One HTTP/1.1 request over a new connection: the status and the body as JSON.
fn http(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let answer = common::http(base, method, path, headers, body);
    (answer.status, answer.json())
}

#[test]
fn the_api_answers_the_clis_json_and_renews_from_the_desk() {
    let served = serve(&book());
    let get = |path: &str| http(&served.base, "GET", path, &[], "");
    // Same JSON as the CLI, from the book folder and from the server's own store.
    for (query, args) in [
        ("at=2024-10-01", vec!["--at", "2024-10-01"]),
        (
            "at=2024-10-01&within=30",
            vec!["--at", "2024-10-01", "--within", "30"],
        ),
        (
            "at=2025-01-15&within=3660",
            vec!["--at", "2025-01-15", "--within", "3660"],
        ),
        (
            "at=2024-10-01&where=segment=saas&where=segment=coworking",
            vec![
                "--at",
                "2024-10-01",
                "--where",
                "segment=saas",
                "--where",
                "segment=coworking",
            ],
        ),
    ] {
        let (status, api) = get(&format!("/api/v1/renewals?{query}"));
        assert_eq!(status, 200, "{api}");
        assert_eq!(api, renewals(&args), "{query}");
        let mut db = expansa();
        db.args(["renewals", "--db", &served.db, "--format", "json"])
            .args(&args);
        let out = db.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            api,
            serde_json::from_slice::<Value>(&out.stdout).unwrap(),
            "{query} --db"
        );
    }
    // Without `at`: today, as the CLI's default.
    let (status, today) = get("/api/v1/renewals");
    assert_eq!(status, 200, "{today}");
    assert_eq!(today, renewals(&[]));
    // The limits and the error shape: 400 with the CLI's words.
    let (status, e) = get("/api/v1/renewals?within=3661");
    assert_eq!(status, 400);
    assert_eq!(e["error"]["code"], "bad_request");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("3661: from 0 to 3660 days"),
        "{e}"
    );
    // A value starting with '-' is the parameter's value, not a flag of its own.
    let (status, e) = get("/api/v1/renewals?within=-1");
    assert_eq!(status, 400);
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains("-1: from 0 to 3660 days"), "{e}");
    let (status, e) = get("/api/v1/renewals?top=3");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    // The KPIs over HTTP are the CLI's too.
    let (_, k) = get("/api/v1/kpis?from=2024-08&to=2024-10");
    assert_eq!(
        k,
        command_json("kpis", &book(), &["--from", "2024-08", "--to", "2024-10"])
    );
    // Renewing R3 from the desk: refused without a key, recorded with one.
    let renew = r#"{"contract": "R3", "apply": true}"#;
    let (status, e) = http(
        &served.base,
        "POST",
        "/api/v1/quotes/renew",
        &[("Idempotency-Key", "desk-R3")],
        renew,
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{e}"
    );
    let (_, before) = get("/api/v1/renewals?at=2024-10-01");
    assert_eq!(before["renewals"][4]["status"], "open");
    let bearer = format!("Bearer {}", served.key);
    let (status, q) = http(
        &served.base,
        "POST",
        "/api/v1/quotes/renew",
        &[("Authorization", &bearer), ("Idempotency-Key", "desk-R3")],
        renew,
    );
    assert_eq!(status, 200, "{q}");
    assert!(q["applied"]["event"].is_number(), "{q}");
    let (_, after) = get("/api/v1/renewals?at=2024-10-01");
    let r3 = &after["renewals"][4];
    assert_eq!(r3["contract"], "R3");
    assert_eq!(r3["status"], "renewed");
    assert_eq!(r3["renewal_contracts"], serde_json::json!(["R3-R20241216"]));
    assert_eq!(r3["renewal_lines"], serde_json::json!(["C1-R20241216"]));
    // A list renewal: 5 SEAT at 420.00 a year.
    assert_eq!(r3["renewed_arr"], "2100.00");
}
