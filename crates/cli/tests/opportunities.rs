//! End-to-end tests of `rules`, `opportunities`, `offers` and `evaluate` on the hand-checked
//! book `testdata/opportunities` (arithmetic in its NOTES.md).

mod common;

use common::{command_json, expansa};
use predicates::prelude::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn book() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/opportunities")
}

fn pick(v: &Value, keys: &[&str]) -> Value {
    Value::Object(
        keys.iter()
            .map(|k| (k.to_string(), v[*k].clone()))
            .collect(),
    )
}

#[test]
fn rules_with_exact_counts_and_measures() {
    let r = command_json(
        "rules",
        &book(),
        &[
            "--at",
            "2024-12-31",
            "--min-support",
            "2",
            "--min-confidence",
            "0.5",
        ],
    );
    assert_eq!(r["transactions"], 5);
    assert_eq!(r["min_count"], 2);
    let rules: Vec<Value> = r["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            pick(
                x,
                &[
                    "antecedent",
                    "consequent",
                    "count",
                    "antecedent_count",
                    "confidence",
                    "lift",
                ],
            )
        })
        .collect();
    // Strongest first: confidence, then lift, then count, then item order.
    assert_eq!(
        rules,
        vec![
            json!({"antecedent": ["payroll"], "consequent": "basic", "count": 2, "antecedent_count": 2,
                   "confidence": "1.0000000000", "lift": "1.2500000000"}),
            json!({"antecedent": ["fiscal"], "consequent": "basic", "count": 2, "antecedent_count": 3,
                   "confidence": "0.6666666667", "lift": "0.8333333333"}),
            json!({"antecedent": ["basic"], "consequent": "payroll", "count": 2, "antecedent_count": 4,
                   "confidence": "0.5000000000", "lift": "1.2500000000"}),
            json!({"antecedent": ["basic"], "consequent": "fiscal", "count": 2, "antecedent_count": 4,
                   "confidence": "0.5000000000", "lift": "0.8333333333"}),
        ]
    );
    let first = &r["rules"][0];
    assert_eq!(first["support"], "0.4000000000");
    assert_eq!(first["leverage"], "0.0800000000");
    assert_eq!(
        first["conviction"],
        Value::Null,
        "confidence 1: infinite conviction"
    );
    // Families: core is held by all five, so core -> x has the support of x.
    let f = command_json(
        "rules",
        &book(),
        &[
            "--at",
            "2024-12-31",
            "--level",
            "family",
            "--min-support",
            "0.4",
            "--min-confidence",
            "0",
        ],
    );
    assert!(f["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["antecedent"] == json!(["core"])
            && x["consequent"] == "fiscal"
            && x["confidence"] == "0.6000000000"));
}

#[test]
fn opportunities_ranked_by_expected_gain() {
    let o = command_json(
        "opportunities",
        &book(),
        &[
            "--at",
            "2024-12-31",
            "--min-support",
            "2",
            "--min-confidence",
            "0.5",
        ],
    );
    assert_eq!(o["found"], 4);
    assert_eq!(o["skipped"], json!({"downsell": 1, "open_offer": 1}));
    let list: Vec<Value> = o["opportunities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            pick(
                x,
                &[
                    "customer_id",
                    "kind",
                    "product_id",
                    "from_product_id",
                    "probability",
                    "gain",
                    "expected_gain",
                    "price_source",
                ],
            )
        })
        .collect();
    assert_eq!(
        list,
        vec![
            json!({"customer_id": "c5", "kind": "upsell", "product_id": "pro", "from_product_id": "basic",
                   "probability": "0.5000000000", "gain": "150.00", "expected_gain": "75.00", "price_source": "list_price"}),
            json!({"customer_id": "c5", "kind": "cross_sell", "product_id": "payroll", "from_product_id": null,
                   "probability": "0.5000000000", "gain": "100.00", "expected_gain": "50.00", "price_source": "median_mrr"}),
            json!({"customer_id": "c4", "kind": "cross_sell", "product_id": "payroll", "from_product_id": null,
                   "probability": "0.4000000000", "gain": "100.00", "expected_gain": "40.00", "price_source": "median_mrr"}),
            json!({"customer_id": "c5", "kind": "cross_sell", "product_id": "fiscal", "from_product_id": null,
                   "probability": "0.5000000000", "gain": "60.00", "expected_gain": "30.00", "price_source": "list_price"}),
        ]
    );
    let why = &o["opportunities"][0]["why"];
    assert_eq!(why["type"], "usage");
    assert_eq!(
        why["months"][1],
        json!({"month": "2024-11", "used": "85", "included": "100"})
    );
    assert_eq!(
        (
            why["offers_accepted"].clone(),
            why["offers_decided"].clone()
        ),
        (json!(1), json!(2))
    );
    assert_eq!(
        o["opportunities"][2]["why"],
        json!({"type": "popularity", "holders": 2, "transactions": 5})
    );
    assert_eq!(o["opportunities"][1]["why"]["antecedent"], json!(["basic"]));

    // --customer, --kind and --top narrow the same list.
    let c5 = command_json(
        "opportunities",
        &book(),
        &[
            "--at",
            "2024-12-31",
            "--min-support",
            "2",
            "--min-confidence",
            "0.5",
            "--customer",
            "c5",
            "--kind",
            "cross_sell",
            "--top",
            "1",
        ],
    );
    assert_eq!(c5["found"], 2);
    assert_eq!(c5["opportunities"].as_array().unwrap().len(), 1);
    assert_eq!(c5["opportunities"][0]["product_id"], "payroll");
    // Without the downsell exclusion c3 (fiscal, rule basic->fiscal) comes back.
    let all = command_json(
        "opportunities",
        &book(),
        &[
            "--at",
            "2024-12-31",
            "--min-support",
            "2",
            "--min-confidence",
            "0.5",
            "--skip-downsell-months",
            "0",
        ],
    );
    assert_eq!(all["found"], 5);
    assert!(all["opportunities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["customer_id"] == "c3" && x["expected_gain"] == "30.00"));
}

#[test]
fn opportunities_and_offers_take_where_filters() {
    let ranked = |filters: &[&str]| {
        let mut args = vec!["--at", "2024-12-31"];
        args.extend(filters);
        let r = command_json("opportunities", &book(), &args);
        let list: Vec<(String, String)> = r["opportunities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["customer_id"].as_str().unwrap().to_string(),
                    o["product_id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        (r["found"].as_u64().unwrap(), list)
    };
    let pair = |c: &str, p: &str| (c.to_string(), p.to_string());
    // The model learns from the whole book; the filters pick whose and which products are listed.
    assert_eq!(
        ranked(&["--where", "segment=mid"]),
        (1, vec![pair("c4", "payroll")])
    );
    assert_eq!(
        ranked(&["--where", "family=payroll"]),
        (2, vec![pair("c5", "payroll"), pair("c4", "payroll")])
    );
    assert_eq!(
        ranked(&["--where", "segment=smb", "--where", "product=pro"]),
        (1, vec![pair("c5", "pro")])
    );

    let offers = |filters: &[&str]| {
        let mut args = vec!["--from", "2024-01", "--to", "2024-12"];
        args.extend(filters);
        let r = command_json("offers", &book(), &args);
        let ids: Vec<String> = r["offers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect();
        (r["total"]["made"].as_u64().unwrap(), ids)
    };
    assert_eq!(
        offers(&["--where", "segment=mid"]),
        (2, vec!["o1".to_string(), "o2".to_string()])
    );
    assert_eq!(
        offers(&["--where", "family=payroll"]),
        (1, vec!["o3".to_string()])
    );
    assert_eq!(offers(&["--where", "channel=seo"]), (0, vec![]));
    expansa()
        .args(["offers", "--data", book().to_str().unwrap()])
        .args([
            "--from",
            "2024-01",
            "--to",
            "2024-12",
            "--where",
            "colour=red",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown filter"));
}

#[test]
fn offers_conversion_and_forecast() {
    let r = command_json("offers", &book(), &["--from", "2024-01", "--to", "2024-12"]);
    assert_eq!(
        r["total"],
        json!({"key": "total", "made": 3, "accepted": 1, "declined": 1, "open": 1,
               "conversion_rate": "0.5000000000", "mrr_gained": "150.00", "average_gain": "150.00",
               "forecast": "175.00"})
    );
    assert_eq!(r["by_month"].as_array().unwrap().len(), 12);
    assert_eq!(r["by_month"][2]["forecast"], "75.00");
    assert_eq!(r["by_month"][4]["forecast"], "50.00");
    assert_eq!(r["by_month"][11]["forecast"], "50.00");
    assert_eq!(
        r["by_kind"][1],
        json!({"key": "upsell", "made": 2, "accepted": 1, "declined": 1, "open": 0,
        "conversion_rate": "0.5000000000", "mrr_gained": "150.00", "average_gain": "150.00", "forecast": "125.00"})
    );
    let segments: Vec<&str> = r["by_segment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(segments, ["mid", "smb"]);
    // The offers behind the groups: one row each, with what it brought and was forecast.
    let offers = r["offers"].as_array().unwrap();
    assert_eq!(offers.len(), 3);
    let pick_offer = |o: &Value| {
        (
            o["outcome"].clone(),
            o["gain"].clone(),
            o["forecast"].clone(),
        )
    };
    let gains: Vec<_> = offers.iter().map(pick_offer).collect();
    assert_eq!(
        gains,
        [
            (json!("declined"), json!("0.00"), json!("75.00")),
            (json!("accepted"), json!("150.00"), json!("50.00")),
            (json!(null), json!("0.00"), json!("50.00")),
        ]
    );
}

#[test]
fn evaluation_measures() {
    let e = command_json("evaluate", &book(), &["--cutoff", "2024-04-30", "--k", "5"]);
    assert_eq!(
        (
            e["customers"].clone(),
            e["added"].clone(),
            e["added_mrr"].clone()
        ),
        (json!(1), json!(1), json!("250.00"))
    );
    assert_eq!(e["until"], "2024-11-01");
    for r in e["recommenders"].as_array().unwrap() {
        assert_eq!(
            pick(
                r,
                &[
                    "hit_rate_at_k",
                    "precision_at_k",
                    "map_at_k",
                    "mrr_at_k",
                    "captured_mrr"
                ]
            ),
            json!({"hit_rate_at_k": "1.0000000000", "precision_at_k": "0.2000000000", "map_at_k": "0.5000000000",
                   "mrr_at_k": "0.5000000000", "captured_mrr": "250.00"}),
            "{}",
            r["name"]
        );
    }
    assert!(e["notes"][0]
        .as_str()
        .unwrap()
        .contains("popularity matches or beats rules"));
    // k = 1: the single recommendation (payroll) misses.
    let e = command_json("evaluate", &book(), &["--cutoff", "2024-04-30", "--k", "1"]);
    assert_eq!(e["recommenders"][0]["hit_rate_at_k"], "0.0000000000");
}

#[test]
fn tables_in_both_languages_and_csv() {
    expansa()
        .args(["opportunities", "--data"])
        .arg(book())
        .args([
            "--at",
            "2024-12-31",
            "--min-support",
            "2",
            "--min-confidence",
            "0.5",
            "--locale",
            "pt-BR",
        ])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("R$ 75,00").and(predicate::str::contains("uso 90% 85% 100%")),
        );
    expansa()
        .args(["offers", "--data"])
        .arg(book())
        .args(["--from", "2024-01", "--to", "2024-12", "--format", "csv"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "total,total,3,1,1,1,0.5000000000,150.00,150.00,175.00",
        ));
    expansa()
        .args(["rules", "--data"])
        .arg(book())
        .args([
            "--at",
            "2024-12-31",
            "--min-support",
            "2",
            "--min-confidence",
            "0.5",
            "--format",
            "csv",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "payroll,basic,2,2,4,0.4000000000,1.0000000000,1.2500000000,0.0800000000,\n",
        ));
}

#[test]
fn bad_requests_are_clear_errors() {
    let usage = |args: &[&str], message: &str| {
        expansa()
            .args(args)
            .arg("--data")
            .arg(book())
            .assert()
            .code(2)
            .stderr(predicate::str::contains(message));
    };
    usage(
        &["rules", "--at", "2024-12-31", "--min-support", "0"],
        "expected a count >= 1",
    );
    usage(
        &["rules", "--at", "2024-12-31", "--min-support", "1.5"],
        "at most 1",
    );
    usage(
        &["rules", "--at", "2024-12-31", "--min-confidence", "2"],
        "between 0 and 1",
    );
    usage(
        &["rules", "--at", "2024-12-31", "--max-len", "0"],
        "--max-len",
    );
    usage(
        &["rules", "--at", "2024-12-31", "--itemsets"],
        "--format json",
    );
    usage(
        &["rules", "--at", "2024-13-01"],
        "\"2024-13-01\": no such day in the calendar",
    );
    usage(
        &["rules", "--at", "31/12/2024"],
        "expected a date YYYY-MM-DD",
    );
    usage(
        &["evaluate", "--cutoff", "2024-04-30", "--k", "0"],
        "--k must be at least 1",
    );
    usage(
        &[
            "evaluate",
            "--cutoff",
            "2024-04-30",
            "--until",
            "2024-01-01",
        ],
        "after --cutoff",
    );
    usage(
        &["offers", "--from", "2024-12", "--to", "2024-01"],
        "after --to",
    );
    expansa()
        .args([
            "opportunities",
            "--at",
            "2024-12-31",
            "--customer",
            "nobody",
            "--data",
        ])
        .arg(book())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown customer \"nobody\""));
    expansa()
        .args([
            "rules",
            "--at",
            "2024-12-31",
            "--min-support",
            "1",
            "--max-itemsets",
            "3",
            "--data",
        ])
        .arg(book())
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("more than 3 frequent itemsets")
                .and(predicate::str::contains("raise --min-support")),
        );
}

/// A cutoff after the book's latest line start: the default window is empty, from the cutoff
/// to the cutoff (it used to end at the latest start, before it), and nothing was added.
#[test]
fn a_cutoff_after_every_start_gives_an_empty_window() {
    let e = command_json("evaluate", &book(), &["--cutoff", "2026-01-01"]);
    assert_eq!(
        (e["cutoff"].clone(), e["until"].clone()),
        (json!("2026-01-01"), json!("2026-01-01"))
    );
    assert_eq!(
        (e["customers"].clone(), e["added"].clone()),
        (json!(0), json!(0))
    );
    let o = common::expansa()
        .args(["evaluate", "--cutoff", "2026-01-01", "--data"])
        .arg(book())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("2026-01-01 → 2026-01-01"), "{table}");
}
