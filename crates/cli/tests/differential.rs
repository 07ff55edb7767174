//! Differential test against the DuckDB peer (`shared/tools/peer_duckdb.py`) on month-aligned
//! books from `shared/tools/gen_data.py`: every month of the report must be identical.
//!
//! Needs python3 with duckdb (`pip install duckdb`; `.ci/run` installs it). The shared folder
//! is found at `EXPANSA_SHARED`, else `../shared` beside the repository.

mod common;

use serde_json::Value;

fn differential(customers: u32, seed: u32) {
    let tools = common::shared().join("tools");
    let dir = std::env::temp_dir().join(format!("expansa-diff-{}-{seed}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    common::python(
        &[
            tools.join("gen_data.py").as_os_str(),
            dir.as_os_str(),
            customers.to_string().as_ref(),
            "36".as_ref(),
            seed.to_string().as_ref(),
        ],
        "duckdb",
    );
    let (from, to) = ("2023-01", "2025-12");
    let peer: Value = serde_json::from_slice(&common::python(
        &[
            tools.join("peer_duckdb.py").as_os_str(),
            dir.as_os_str(),
            from.as_ref(),
            to.as_ref(),
        ],
        "duckdb",
    ))
    .unwrap();
    for rules in ["conexa", "chartmogul"] {
        let ours = common::movements_json(&dir, &["--from", from, "--to", to, "--rules", rules]);
        let (ours, theirs) = (
            ours["months"].as_array().unwrap(),
            peer["months"].as_array().unwrap(),
        );
        assert_eq!(ours.len(), 36);
        assert_eq!(ours.len(), theirs.len());
        for (o, t) in ours.iter().zip(theirs) {
            for (key, value) in t.as_object().unwrap() {
                assert_eq!(
                    &o[key], value,
                    "seed {seed}, {rules}, month {}, {key}",
                    t["month"]
                );
            }
        }
        // The book is not trivial: it has every kind of movement.
        common::assert_every_movement_kind(ours, &format!("seed {seed}"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn same_as_duckdb_peer_seed_1() {
    differential(5_000, 1);
}

#[test]
fn same_as_duckdb_peer_seed_2() {
    differential(5_000, 2);
}

/// KPIs recomputed from the movement report's JSON equal the `kpis` output (both printed
/// from one run each of the CLI on a generated book), for every month.
#[test]
fn kpis_agree_with_the_movement_report() {
    let tools = common::shared().join("tools");
    let dir = std::env::temp_dir().join(format!("expansa-kpi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    common::python(
        &[
            tools.join("gen_data.py").as_os_str(),
            dir.as_os_str(),
            "3000".as_ref(),
            "36".as_ref(),
            "7".as_ref(),
        ],
        "duckdb",
    );
    let range = ["--from", "2023-06", "--to", "2025-12"];
    let moves = common::movements_json(&dir, &range);
    let out = common::expansa()
        .args(["kpis", "--data"])
        .arg(&dir)
        .args(range)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kpis: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = |v: &Value| {
        v.as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap()
    };
    let rate = |num: rust_decimal::Decimal, den: rust_decimal::Decimal| {
        (num / den)
            .round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
            .to_string()
    };
    let months = moves["months"].as_array().unwrap();
    assert_eq!(months.len(), kpis["months"].as_array().unwrap().len());
    for (m, k) in months.iter().zip(kpis["months"].as_array().unwrap()) {
        assert_eq!(m["month"], k["month"]);
        assert_eq!(m["mrr_end"], k["mrr"], "{}", m["month"]);
        assert_eq!(m["customers_end"], k["customers"], "{}", m["month"]);
        assert_eq!(
            d(&k["arr"]),
            d(&m["mrr_end"]) * rust_decimal::Decimal::from(12)
        );
        let start = d(&m["mrr_start"]);
        let losses = d(&m["churn"]) + d(&m["downsell"]);
        let expansion = d(&m["upsell"]) + d(&m["cross_sell"]);
        assert_eq!(d(&k["expansion_mrr"]), expansion, "{}", m["month"]);
        // Amounts in the JSON are rounded to cents, so compare rates only where the rounding
        // cannot move the fourth decimal: here every amount is a whole number of cents.
        assert_eq!(
            k["gross_mrr_churn_rate"],
            rate(-losses, start),
            "{}",
            m["month"]
        );
        assert_eq!(
            k["expansion_rate"],
            rate(expansion, start),
            "{}",
            m["month"]
        );
        let net = -(losses + expansion + d(&m["reactivation"]));
        assert_eq!(k["net_mrr_churn_rate"], rate(net, start), "{}", m["month"]);
        let gains = d(&m["new"]) + expansion + d(&m["reactivation"]);
        if losses.is_zero() {
            assert_eq!(k["quick_ratio"], Value::Null);
        } else {
            assert_eq!(k["quick_ratio"], rate(gains, -losses), "{}", m["month"]);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
