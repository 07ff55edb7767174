//! Hand-checked KPI books (the cases of the KPI issue), a cohort grid and filters.

use expansa_import::{read_book_from, ImportOptions, InMemory, NoProgress};
use expansa_kpi::{cohorts, kpis, render_cohorts, render_kpis, CohortBy, CohortMetric};
use expansa_ledger::Book;
use expansa_movements::{ByCustomer, Query, Rules, Selection};
use serde_json::Value;

const HEADER: &str = "id,customer_id,product_id,unit_price,start_date,end_date,revises\n";

fn book(files: &[(&str, &str)]) -> Book {
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, t)| (*n, t.as_bytes())).collect();
    read_book_from(&InMemory(&files), &ImportOptions::default(), &NoProgress)
        .unwrap_or_else(|e| panic!("{:?}", e.0))
}

/// MRR at each month end from 2024-01 to `to`, of the lines `filters` select.
fn mrr_end_with(book: &Book, to: &str, filters: &[(&str, &str)]) -> Vec<String> {
    let owned: Vec<(String, String)> = filters
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let selection = Selection::from_filters(book, &owned).unwrap();
    let q = Query {
        from: "2024-01".parse().unwrap(),
        to: to.parse().unwrap(),
        rules: Rules::Conexa,
    };
    let r = expansa_movements::report_selected(book, &q, &ByCustomer::new(book, &selection));
    r.months
        .iter()
        .map(|m| m.mrr_end.plain(book.currency()))
        .collect()
}

fn kpi_json(book: &Book, from: &str, to: &str) -> Value {
    let q = Query {
        from: from.parse().unwrap(),
        to: to.parse().unwrap(),
        rules: Rules::Conexa,
    };
    let r = kpis(book, &q, &ByCustomer::new(book, &Selection::all()), None);
    serde_json::from_str(&render_kpis(&r, expansa_ledger::Format::Json)).unwrap()
}

#[test]
fn ten_of_a_hundred_churn() {
    let mut subs = String::from(HEADER);
    for i in 0..100 {
        let end = if i < 10 { "2024-01-31" } else { "" };
        subs.push_str(&format!("l{i},c{i},p,10,2024-01-01,{end},\n"));
    }
    let v = kpi_json(&book(&[("subscriptions.csv", &subs)]), "2024-02", "2024-02");
    let feb = &v["months"][0];
    assert_eq!(feb["churned_customers"], 10);
    assert_eq!(feb["customer_churn_rate"], "0.1000");
    assert_eq!(feb["customers"], 90);
    assert_eq!(feb["gross_mrr_churn_rate"], "0.1000");
}

#[test]
fn gross_and_net_mrr_churn() {
    // MRR at the start of February 100: churn 10 (A), downsell 10 (B drops b2), upsell 10 (C).
    let subs = format!(
        "{HEADER}a1,A,p,10,2024-01-01,2024-01-31,\n\
         b1,B,p,40,2024-01-01,,\n\
         b2,B,q,10,2024-01-01,2024-01-31,\n\
         c1,C,p,40,2024-01-01,2024-01-31,\n\
         c2,C,p,50,2024-02-01,,c1\n"
    );
    let v = kpi_json(&book(&[("subscriptions.csv", &subs)]), "2024-02", "2024-02");
    let feb = &v["months"][0];
    assert_eq!(feb["gross_mrr_churn_rate"], "0.2000");
    assert_eq!(feb["net_mrr_churn_rate"], "0.1000");
    assert_eq!(feb["grr"], "0.8000");
    assert_eq!(feb["nrr"], "0.9000");
    assert_eq!(feb["expansion_rate"], "0.1000");
    assert_eq!(feb["quick_ratio"], "0.5000");
    assert_eq!(feb["mrr"], "90.00");
    assert_eq!(feb["arr"], "1080.00");
    assert_eq!(feb["arpa"], "45.00");
    assert_eq!(feb["avg_upsell"], "10.00");
    assert_eq!(feb["upsell_customers"], 1);
    assert_eq!(feb["expansion_mrr"], "10.00");
}

#[test]
fn cross_sell_averages_count_customers_not_lines() {
    // February: A adds two modules (30 + 20), B adds one (10): 60 of cross-sell over 2 customers.
    let subs = format!(
        "{HEADER}a0,A,core,100,2024-01-01,,\n\
         a1,A,fiscal,30,2024-02-01,,\n\
         a2,A,payroll,20,2024-02-01,,\n\
         b0,B,core,100,2024-01-01,,\n\
         b1,B,bi,10,2024-02-15,,\n"
    );
    let v = kpi_json(&book(&[("subscriptions.csv", &subs)]), "2024-02", "2024-02");
    let feb = &v["months"][0];
    assert_eq!(feb["cross_sell_customers"], 2);
    assert_eq!(feb["avg_cross_sell"], "30.00");
    assert_eq!(feb["expansion_mrr"], "60.00");
    assert_eq!(feb["expansion_rate"], "0.3000");
    assert_eq!(feb["avg_upsell"], Value::Null);
}

#[test]
fn ltv_over_cac_and_payback() {
    // The steady book in June: ARPA 100; churn 5% in each month of Jan..May that had paying
    // customers at its start (December 2023 had none), so LTV 2000; one new customer and
    // 500 of spend: CAC 500, LTV/CAC 4, payback 500 / 100 = 5 months.
    let mut b = steady_churn_book(true);
    b.marketing_spend.push(expansa_ledger::Spend {
        month: "2024-06".parse().unwrap(),
        channel: "ads".into(),
        amount: 500.into(),
    });
    let v = kpi_json(&b, "2024-06", "2024-06");
    let june = &v["months"][0];
    assert_eq!(june["new_customers"], 1);
    assert_eq!(june["ltv"], "2000.00");
    assert_eq!(june["cac"], "500.00");
    assert_eq!(june["ltv_cac"], "4.0000");
    assert_eq!(june["cac_payback_months"], "5.00");
}

/// 20 customers at 100 from 2023-12; each month of 2024-01..06 one leaves and one joins, so
/// every one of those months has 20 customers at the start and 1 churn (5%).
fn steady_churn_book(churn: bool) -> Book {
    let mut subs = String::from(HEADER);
    for i in 0..20 {
        let end = if churn && i < 6 {
            month_end(i)
        } else {
            String::new()
        };
        subs.push_str(&format!("o{i},old{i},p,100,2023-12-01,{end},\n"));
    }
    if churn {
        for i in 0..6 {
            subs.push_str(&format!("n{i},new{i},p,100,2024-{:02}-01,,\n", i + 1));
        }
    }
    book(&[("subscriptions.csv", &subs)])
}

/// The last day of the month before 2024-(i+1): where customer `i` of the steady book leaves.
fn month_end(i: usize) -> String {
    [
        "2023-12-31",
        "2024-01-31",
        "2024-02-29",
        "2024-03-31",
        "2024-04-30",
        "2024-05-31",
    ][i]
        .into()
}

#[test]
fn ltv_is_arpa_over_six_months_average_churn() {
    let v = kpi_json(&steady_churn_book(true), "2024-01", "2024-07");
    for m in &v["months"].as_array().unwrap()[..6] {
        assert_eq!(m["customer_churn_rate"], "0.0500", "{}", m["month"]);
        assert_eq!(m["customers"], 20);
    }
    let july = &v["months"][6];
    assert_eq!(july["month"], "2024-07");
    assert_eq!(july["arpa"], "100.00");
    assert_eq!(july["ltv"], "2000.00");
    assert_eq!(july["customer_churn_rate"], "0.0000");
}

#[test]
fn ltv_is_null_without_churn_and_says_why() {
    let v = kpi_json(&steady_churn_book(false), "2024-07", "2024-07");
    assert_eq!(v["months"][0]["ltv"], Value::Null);
    let notes: Vec<&str> = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes.iter().any(|n| n
            .starts_with("ltv is null: no customer churn in the six months before")
            && n.contains("2024-07")),
        "{notes:?}"
    );
}

#[test]
fn cac_and_payback_from_marketing_spend() {
    let subs =
        format!("{HEADER}a,A,p,100,2024-03-01,,\nb,B,p,300,2024-03-10,,\nc,C,p,50,2024-01-01,,\n");
    let customers = "id,channel\nA,ads\nB,seo\nC,ads\n";
    let spend = "month,channel,amount\n2024-03,ads,600\n2024-03,seo,200\n";
    let b = book(&[
        ("subscriptions.csv", &subs),
        ("customers.csv", customers),
        ("marketing_spend.csv", spend),
    ]);
    let v = kpi_json(&b, "2024-03", "2024-03");
    let mar = &v["months"][0];
    assert_eq!(mar["new_customers"], 2);
    assert_eq!(mar["cac"], "400.00"); // 800 / 2
    assert_eq!(mar["cac_payback_months"], "2.00"); // 400 / ((100 + 300) / 2)
    assert_eq!(mar["cac_by_channel"]["ads"], "600.00");
    assert_eq!(mar["cac_by_channel"]["seo"], "200.00");
}

#[test]
fn offer_conversion() {
    let subs = format!("{HEADER}a,A,p,100,2024-01-01,,\n");
    let offers = "id,customer_id,product_id,kind,offered_on,outcome,decided_on\n\
                  o1,A,q,cross_sell,2024-02-01,accepted,2024-03-02\n\
                  o2,A,q,cross_sell,2024-02-01,declined,2024-03-05\n\
                  o3,A,q,upsell,2024-02-01,accepted,2024-03-09\n\
                  o4,A,r,upsell,2024-03-01,,\n";
    let b = book(&[("subscriptions.csv", &subs), ("offers.csv", offers)]);
    let v = kpi_json(&b, "2024-03", "2024-03");
    assert_eq!(v["months"][0]["offer_conversion_rate"], "0.6667");
    // `--where` keeps the offers of the selected customers and products: here only o4 (open,
    // product r) and none decided, so the rate is null; for product q it is the book's.
    let filtered = |key: &str, value: &str| {
        let q = Query {
            from: "2024-03".parse().unwrap(),
            to: "2024-03".parse().unwrap(),
            rules: Rules::Conexa,
        };
        let filters = [(key.to_string(), value.to_string())];
        let selection = Selection::from_filters(&b, &filters).unwrap();
        let r = kpis(&b, &q, &ByCustomer::new(&b, &selection), None);
        let v: Value =
            serde_json::from_str(&render_kpis(&r, expansa_ledger::Format::Json)).unwrap();
        v["months"][0]["offer_conversion_rate"].clone()
    };
    assert_eq!(filtered("product", "r"), Value::Null);
    assert_eq!(filtered("product", "q"), "0.6667");
    // A customer the book does not have is refused rather than read as a report of nothing.
    let unknown = [("customer".to_string(), "B".to_string())];
    assert!(Selection::from_filters(&b, &unknown).is_err());
}

#[test]
fn cohort_grid() {
    let subs = format!(
        "{HEADER}x1,X1,p,100,2024-01-05,,\n\
         x2,X2,p,100,2024-01-20,2024-02-29,\n\
         y1,Y,p,50,2024-02-03,2024-02-29,\n\
         y2,Y,p,100,2024-03-01,,y1\n"
    );
    let b = book(&[("subscriptions.csv", &subs)]);
    let by = ByCustomer::new(&b, &Selection::all());
    let (from, to) = ("2024-01".parse().unwrap(), "2024-03".parse().unwrap());
    let mrr = cohorts(&b, &by, from, to, CohortBy::Month, CohortMetric::Mrr);
    let v: Value = serde_json::from_str(&render_cohorts(
        &mrr,
        b.currency(),
        expansa_ledger::Format::Json,
    ))
    .unwrap();
    assert_eq!(
        v["cohorts"],
        serde_json::json!([
            {"cohort": "2024-01", "customers": 2, "base": "200.00", "cells": ["1.0000", "1.0000", "0.5000"]},
            {"cohort": "2024-02", "customers": 1, "base": "50.00", "cells": ["1.0000", "2.0000"]}
        ])
    );
    let count = cohorts(&b, &by, from, to, CohortBy::Month, CohortMetric::Customers);
    let v: Value = serde_json::from_str(&render_cohorts(
        &count,
        b.currency(),
        expansa_ledger::Format::Json,
    ))
    .unwrap();
    assert_eq!(
        v["cohorts"][0]["cells"],
        serde_json::json!(["1.0000", "1.0000", "0.5000"])
    );
    assert_eq!(
        v["cohorts"][1]["cells"],
        serde_json::json!(["1.0000", "1.0000"])
    );
    let quarter = cohorts(&b, &by, from, to, CohortBy::Quarter, CohortMetric::Mrr);
    assert_eq!(quarter.rows.len(), 1);
    assert_eq!(quarter.rows[0].label, "2024-Q1");
    assert_eq!(quarter.rows[0].customers, 3);
}

#[test]
fn filters_select_customers_and_products() {
    let subs = format!(
        "{HEADER}a1,A,core,100,2024-01-01,,\n\
         a2,A,payroll,30,2024-02-01,,\n\
         b1,B,core,200,2024-01-01,,\n"
    );
    let customers = "id,segment\nA,smb\nB,mid\n";
    let products = "id,family\ncore,core\npayroll,payroll\n";
    let b = book(&[
        ("subscriptions.csv", &subs),
        ("customers.csv", customers),
        ("products.csv", products),
    ]);
    let mrr_end = |filters: &[(&str, &str)]| mrr_end_with(&b, "2024-02", filters);
    assert_eq!(mrr_end(&[]), ["300.00", "330.00"]);
    assert_eq!(mrr_end(&[("segment", "smb")]), ["100.00", "130.00"]);
    assert_eq!(
        mrr_end(&[("segment", "smb"), ("segment", "mid")]),
        ["300.00", "330.00"]
    );
    assert_eq!(mrr_end(&[("family", "payroll")]), ["0.00", "30.00"]);
    assert_eq!(
        mrr_end(&[("segment", "mid"), ("family", "payroll")]),
        ["0.00", "0.00"]
    );
    assert_eq!(mrr_end(&[("product", "core")]), ["300.00", "300.00"]);
    let err = Selection::from_filters(&b, &[("colour".into(), "red".into())]).unwrap_err();
    assert!(err.contains("unknown filter"), "{err}");
}

#[test]
fn any_customers_csv_column_filters() {
    let subs =
        format!("{HEADER}a,A,p,100,2024-01-01,,\nb,B,p,200,2024-01-01,,\nc,C,p,300,2024-01-01,,\n");
    let customers = "id,City,segment\nA,Recife,smb\nB,Natal,smb\nC,Recife,\n";
    let b = book(&[("subscriptions.csv", &subs), ("customers.csv", customers)]);
    let mrr = |filters: &[(&str, &str)]| mrr_end_with(&b, "2024-01", filters).remove(0);
    assert_eq!(mrr(&[("city", "Recife")]), "400.00");
    assert_eq!(mrr(&[("city", "Recife"), ("segment", "smb")]), "100.00");
    assert_eq!(mrr(&[("city", "Natal"), ("city", "Recife")]), "600.00");
    let err = Selection::from_filters(&b, &[("colour".into(), "red".into())]).unwrap_err();
    assert!(
        err.contains("city"),
        "the error lists the book's own columns: {err}"
    );
}

/// The KPI JSON of `from..=to` under `rules`, with `--where` `filters`.
fn kpi_json_with(
    book: &Book,
    from: &str,
    to: &str,
    rules: Rules,
    filters: &[(&str, &str)],
) -> Value {
    let q = Query {
        from: from.parse().unwrap(),
        to: to.parse().unwrap(),
        rules,
    };
    let owned: Vec<(String, String)> = filters
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let selection = Selection::from_filters(book, &owned).unwrap();
    let r = kpis(book, &q, &ByCustomer::new(book, &selection), None);
    serde_json::from_str(&render_kpis(&r, expansa_ledger::Format::Json)).unwrap()
}

/// The retention book of `retention_counts_only_customers_paying_at_the_start`; without
/// `outsiders`, R and W (no MRR at the end of January) are left out.
fn retention_book(outsiders: bool) -> Book {
    let mut subs = format!(
        "{HEADER}a1,A,core,100,2024-01-01,2024-01-31,\n\
         a2,A,core,160,2024-02-01,,a1\n\
         b1,B,core,50,2024-01-01,2024-01-31,\n\
         c1,C,core,200,2024-01-01,,\n\
         c2,C,fiscal,40,2024-02-10,,\n\
         d1,D,core,150,2024-01-01,2024-02-14,\n\
         d2,D,core,120,2024-02-15,,d1\n\
         e1,E,fiscal,50,2024-01-01,,\n"
    );
    let mut customers = String::from("id,registered_on\nA,\nB,\nC,\nD,\nE,\n");
    if outsiders {
        subs.push_str(
            "r1,R,core,80,2023-12-01,2023-12-31,\n\
             r2,R,core,90,2024-02-05,,\n\
             w1,W,core,70,2024-02-01,,\n\
             w2,W,fiscal,30,2024-02-20,,\n",
        );
        customers.push_str("R,\nW,2024-01-10\n");
    }
    let products = "id,family\ncore,core\nfiscal,fiscal\n";
    book(&[
        ("subscriptions.csv", &subs),
        ("customers.csv", &customers),
        ("products.csv", products),
    ])
}

#[test]
fn retention_counts_only_customers_paying_at_the_start() {
    // February, worked by hand (rules R6 of issue 12). Paying at the end of January:
    // A 100, B 50, C 200, D 150, E 50: mrr_start 550.
    // - A: a1 -> a2 (revises): upsell +60.       - B: b1 ends 2024-01-31: churn -50.
    // - C: adds c2 (fiscal, no predecessor): cross_sell +40 (registered 2024-01-01 < Feb).
    // - D: d1 -> d2 (revises): downsell -30.     - E: unchanged 50.
    // - R: paid in December 2023 only (r1), comes back with r2: reactivation +90.
    // - W: registered 2024-01-10, first contract w1 on 2024-02-01 (its first day): new +70;
    //   w2 on 2024-02-20: conexa cross_sell +30 (registered before February, not its first
    //   day), although W had no MRR at the start; chartmogul: new (W's prev is 0).
    // conexa totals: new 70, cross_sell 70, upsell 60, reactivation 90, downsell -30,
    // churn -50: mrr_end 550 + 210 = 760 (A 160 + C 240 + D 120 + E 50 + R 90 + W 100).
    // Movements of the customers paying at the start (A, B, C, D, E): upsell_r 60,
    // cross_sell_r 40, downsell_r -30, churn_r -50.
    // nrr = (550 + 60 + 40 - 30 - 50) / 550 = 570 / 550 = 1.036363... -> 1.0364
    // grr = (550 - 30 - 50) / 550 = 470 / 550 = 0.854545... -> 0.8545
    // expansion_rate = (60 + 40) / 550 = 0.181818... -> 0.1818
    // contraction_rate = 30 / 550 = 0.054545... -> 0.0545
    // net_mrr_churn_rate (all customers) = -(-50 - 30 + 60 + 70 + 90) / 550 = -140 / 550
    //   = -0.254545... -> -0.2545 (the old nrr, 1 - net, was 1.2545: R's comeback and W's
    //   cross-sell counted as retention; the old expansion_rate was 130 / 550 = 0.2364)
    // gross_mrr_churn_rate = 80 / 550 = 0.145454... -> 0.1455
    // quick_ratio = (70 + 70 + 60 + 90) / 80 = 3.625 -> 3.6250
    // customer_churn_rate = 1 (B) / 5 = 0.2000; new_customers 1 (W; R is a reactivation).
    let b = retention_book(true);
    let v = kpi_json_with(&b, "2024-02", "2024-02", Rules::Conexa, &[]);
    let feb = &v["months"][0];
    assert_eq!(feb["mrr"], "760.00");
    assert_eq!(feb["customers"], 6);
    assert_eq!(feb["new_customers"], 1);
    assert_eq!(feb["churned_customers"], 1);
    assert_eq!(feb["customer_churn_rate"], "0.2000");
    assert_eq!(feb["nrr"], "1.0364");
    assert_eq!(feb["grr"], "0.8545");
    assert_eq!(feb["expansion_rate"], "0.1818");
    assert_eq!(feb["contraction_rate"], "0.0545");
    assert_eq!(feb["net_mrr_churn_rate"], "-0.2545");
    assert_eq!(feb["gross_mrr_churn_rate"], "0.1455");
    assert_eq!(feb["quick_ratio"], "3.6250");

    // chartmogul: W's w2 is new (100 new in all), cross_sell is C's 40 alone; the retention
    // figures are the same customers' and do not move. net_mrr_churn_rate =
    // -(-50 - 30 + 60 + 40 + 90) / 550 = -110 / 550 = -0.2000.
    let v = kpi_json_with(&b, "2024-02", "2024-02", Rules::Chartmogul, &[]);
    let feb = &v["months"][0];
    assert_eq!(feb["nrr"], "1.0364");
    assert_eq!(feb["grr"], "0.8545");
    assert_eq!(feb["expansion_rate"], "0.1818");
    assert_eq!(feb["contraction_rate"], "0.0545");
    assert_eq!(feb["net_mrr_churn_rate"], "-0.2000");

    // Without R and W (no MRR at the start of February) the retention figures are unchanged;
    // net_mrr_churn_rate = -(-50 - 30 + 60 + 40) / 550 = -20 / 550 = -0.036363... -> -0.0364.
    let v = kpi_json_with(
        &retention_book(false),
        "2024-02",
        "2024-02",
        Rules::Conexa,
        &[],
    );
    let feb = &v["months"][0];
    assert_eq!(feb["mrr"], "570.00");
    assert_eq!(feb["nrr"], "1.0364");
    assert_eq!(feb["grr"], "0.8545");
    assert_eq!(feb["expansion_rate"], "0.1818");
    assert_eq!(feb["contraction_rate"], "0.0545");
    assert_eq!(feb["net_mrr_churn_rate"], "-0.0364");

    // family=core (R5 + R6: customers with in-filter MRR at the start: A 100, B 50, C 200,
    // D 150 = 500; E holds only fiscal). Their in-filter movements: upsell 60, downsell -30,
    // churn -50 (B's whole MRR drops to 0); C's c2 is out of the filter.
    // nrr = (500 + 60 - 30 - 50) / 500 = 0.9600; grr = 420 / 500 = 0.8400;
    // expansion_rate = 60 / 500 = 0.1200; contraction_rate = 30 / 500 = 0.0600;
    // all in-filter movements: new 70 (w1), reactivation 90 (r2), upsell 60, downsell -30,
    // churn -50: net_mrr_churn_rate = -(-50 - 30 + 60 + 0 + 90) / 500 = -70 / 500 = -0.1400.
    let v = kpi_json_with(
        &b,
        "2024-02",
        "2024-02",
        Rules::Conexa,
        &[("family", "core")],
    );
    let feb = &v["months"][0];
    assert_eq!(feb["mrr"], "640.00"); // A 160 + C 200 + D 120 + R 90 + W 70
    assert_eq!(feb["nrr"], "0.9600");
    assert_eq!(feb["grr"], "0.8400");
    assert_eq!(feb["expansion_rate"], "0.1200");
    assert_eq!(feb["contraction_rate"], "0.0600");
    assert_eq!(feb["net_mrr_churn_rate"], "-0.1400");

    // family=fiscal: only E (50) has in-filter MRR at the start. C's c2 (+40, C pays overall:
    // cross_sell) and W's w2 (+30, conexa cross_sell) are not E's: nrr = grr = 50 / 50 = 1.0000,
    // expansion_rate = contraction_rate = 0.0000; net_mrr_churn_rate = -70 / 50 = -1.4000.
    let v = kpi_json_with(
        &b,
        "2024-02",
        "2024-02",
        Rules::Conexa,
        &[("family", "fiscal")],
    );
    let feb = &v["months"][0];
    assert_eq!(feb["mrr"], "120.00");
    assert_eq!(feb["nrr"], "1.0000");
    assert_eq!(feb["grr"], "1.0000");
    assert_eq!(feb["expansion_rate"], "0.0000");
    assert_eq!(feb["contraction_rate"], "0.0000");
    assert_eq!(feb["net_mrr_churn_rate"], "-1.4000");
}

#[test]
fn retention_leaves_fx_out() {
    // U pays 100 USD from January (rate 5.00: 500.00) and renews on 2024-02-01 at 110 USD
    // (rate 5.50: 605.00); B pays 500 BRL. February (R4): A_at_P = 110 x 5.00 = 550.00, so
    // upsell = 550.00 - 500.00 = +50.00 and fx = 605.00 - 550.00 = +55.00; mrr_start 1000.00,
    // mrr_end 1105.00. R6 keeps fx out of retention and expansion:
    // nrr = (1000 + 50) / 1000 = 1.0500; grr = 1000 / 1000 = 1.0000;
    // expansion_rate = 50 / 1000 = 0.0500; contraction_rate = 0.0000;
    // net_mrr_churn_rate = -(50) / 1000 = -0.0500 (fx is not in its definition either).
    let subs = "id,customer_id,product_id,unit_price,currency,start_date,end_date,revises\n\
                u1,U,core,100,USD,2024-01-01,2024-01-31,\n\
                u2,U,core,110,USD,2024-02-01,,u1\n\
                b1,B,core,500,BRL,2024-01-01,,\n";
    let rates = "month,currency,rate\n2024-01,USD,5.00\n2024-02,USD,5.50\n";
    let b = book(&[("subscriptions.csv", subs), ("fx_rates.csv", rates)]);
    let v = kpi_json_with(&b, "2024-02", "2024-02", Rules::Conexa, &[]);
    let feb = &v["months"][0];
    assert_eq!(feb["mrr"], "1105.00");
    assert_eq!(feb["nrr"], "1.0500");
    assert_eq!(feb["grr"], "1.0000");
    assert_eq!(feb["expansion_rate"], "0.0500");
    assert_eq!(feb["contraction_rate"], "0.0000");
    assert_eq!(feb["net_mrr_churn_rate"], "-0.0500");
    assert_eq!(feb["gross_mrr_churn_rate"], "0.0000");
}

/// The problems of a book that does not load, as printed.
fn problems(files: &[(&str, &str)]) -> Vec<String> {
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, t)| (*n, t.as_bytes())).collect();
    match read_book_from(&InMemory(&files), &ImportOptions::default(), &NoProgress) {
        Ok(_) => panic!("the book loads"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn cac_by_channel_matches_channels_spelled_with_other_spaces() {
    // March: A, B and C are new. A's channel has two inner spaces, B's a trailing no-break
    // space (what spreadsheets leave), C's none; the spend row has a leading space. All are
    // "Paid Search": 900 / 3 = 300.00 (before, three channels: 900 / 1 for "Paid Search"
    // and two channels with new customers and no spend).
    let subs =
        format!("{HEADER}a,A,p,100,2024-03-01,,\nb,B,p,100,2024-03-02,,\nc,C,p,100,2024-03-03,,\n");
    let customers = "id,channel\nA,Paid  Search\nB,Paid Search\u{a0}\nC,Paid Search\n";
    let spend = "month,channel,amount\n2024-03, Paid Search,900\n";
    let b = book(&[
        ("subscriptions.csv", &subs),
        ("customers.csv", customers),
        ("marketing_spend.csv", spend),
    ]);
    let v = kpi_json(&b, "2024-03", "2024-03");
    let mar = &v["months"][0];
    assert_eq!(mar["new_customers"], 3);
    assert_eq!(mar["cac"], "300.00");
    assert_eq!(
        mar["cac_by_channel"],
        serde_json::json!({"Paid Search": "300.00"})
    );
}

#[test]
fn channels_that_differ_only_by_case_are_refused_at_the_row() {
    let subs = format!("{HEADER}a,A,p,100,2024-03-01,,\nb,B,p,100,2024-03-01,,\n");
    let customers = "id,channel\nA,Ads\nB,seo\n";
    let spend = "month,channel,amount\n2024-03,seo,100\n2024-03,ads,600\n2024-04,ADS ,50\n";
    assert_eq!(
        problems(&[
            ("subscriptions.csv", &subs),
            ("customers.csv", customers),
            ("marketing_spend.csv", spend),
        ]),
        [
            "marketing_spend.csv:3: channel: ads: differs only by case from 'Ads' \
             (customers.csv:2); write channels alike",
            "marketing_spend.csv:4: channel: ADS: differs only by case from 'Ads' \
             (customers.csv:2); write channels alike",
        ]
    );
    // Inside customers.csv too: the first spelling is the channel's.
    let customers = "id,channel\nA,Ads\nB,ads\n";
    assert_eq!(
        problems(&[("subscriptions.csv", &subs), ("customers.csv", customers)]),
        [
            "customers.csv:3: channel: ads: differs only by case from 'Ads' (customers.csv:2); \
          write channels alike"
        ]
    );
}

#[test]
fn cac_is_null_when_the_filter_splits_a_channel() {
    // March: A (smb) and B (mid) are new, both from ads, which spent 600. The spend is known
    // by channel only: with --where segment=smb, 600 / 1 would charge A with B's share.
    // channel=ads keeps both: 600 / 2 = 300.00; family=core filters products: null.
    let subs = format!("{HEADER}a,A,core,100,2024-03-01,,\nb,B,core,100,2024-03-01,,\n");
    let customers = "id,segment,channel\nA,smb,ads\nB,mid,ads\n";
    let spend = "month,channel,amount\n2024-03,ads,600\n";
    let products = "id,family\ncore,core\n";
    let b = book(&[
        ("subscriptions.csv", &subs),
        ("customers.csv", customers),
        ("marketing_spend.csv", spend),
        ("products.csv", products),
    ]);
    let mar = |filters: &[(&str, &str)]| {
        let channels: Vec<String> = filters
            .iter()
            .filter(|(k, _)| *k == "channel")
            .map(|(_, v)| v.to_string())
            .collect();
        let owned: Vec<(String, String)> = filters
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let selection = Selection::from_filters(&b, &owned).unwrap();
        let q = Query {
            from: "2024-03".parse().unwrap(),
            to: "2024-03".parse().unwrap(),
            rules: Rules::Conexa,
        };
        let spend_channels = (!channels.is_empty()).then_some(channels.as_slice());
        let r = kpis(&b, &q, &ByCustomer::new(&b, &selection), spend_channels);
        let v: Value =
            serde_json::from_str(&render_kpis(&r, expansa_ledger::Format::Json)).unwrap();
        v
    };
    let v = mar(&[]);
    assert_eq!(v["months"][0]["cac"], "300.00");
    let v = mar(&[("channel", "ads")]);
    assert_eq!(v["months"][0]["cac"], "300.00");
    assert_eq!(v["months"][0]["cac_by_channel"]["ads"], "300.00");
    for filters in [
        &[("segment", "smb")][..],
        &[("channel", "ads"), ("segment", "smb")][..],
        &[("family", "core")][..],
    ] {
        let v = mar(filters);
        let m = &v["months"][0];
        assert_eq!(
            m["new_customers"],
            if filters.len() == 1 && filters[0].0 == "family" {
                2
            } else {
                1
            },
            "{filters:?}"
        );
        assert_eq!(m["cac"], Value::Null, "{filters:?}");
        assert_eq!(m["cac_payback_months"], Value::Null, "{filters:?}");
        assert_eq!(m["cac_by_channel"], serde_json::json!({}), "{filters:?}");
        assert!(
            v["notes"].as_array().unwrap().iter().any(|n| n
                .as_str()
                .unwrap()
                .starts_with("cac, cac_by_channel, ltv_cac and cac_payback_months are null: marketing spend is known by channel only")),
            "{filters:?}: {}",
            v["notes"]
        );
    }
}

/// The cohort rows as (label, customers, base, cells), the cells to four places.
fn cohort_rows(grid: &expansa_kpi::CohortGrid) -> Vec<(String, u64, String, Vec<String>)> {
    grid.rows
        .iter()
        .map(|r| {
            (
                r.label.clone(),
                r.customers,
                r.base.to_string(),
                r.cells
                    .iter()
                    .map(|c| expansa_ledger::fixed(c.unwrap(), 4))
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn a_cohorts_base_is_its_customers_starting_value() {
    // 2024-Q1: X1 100 from January (stays), X2 100 in January and February (ends 02-29), Y 50
    // in February then 100 (y2 revises y1). R paid in November 2023 and comes back in
    // February: a reactivation, no cohort of 2024. The quarter's cohort is X1, X2, Y: its
    // base is what they paid at the end of the month each first paid: 100 + 100 + 50 = 250
    // (before: 200, the end of March, which leaves X2 out of the base but in the count).
    // Cell 0 = 200 / 250 = 0.8000. Customers: base 3, paying at the end of March 2: 0.6667.
    let subs = format!(
        "{HEADER}x1,X1,p,100,2024-01-05,,\n\
         x2,X2,p,100,2024-01-20,2024-02-29,\n\
         y1,Y,p,50,2024-02-03,2024-02-29,\n\
         y2,Y,p,100,2024-03-01,,y1\n\
         r1,R,p,70,2023-11-01,2023-11-30,\n\
         r2,R,p,70,2024-02-01,,\n"
    );
    let b = book(&[("subscriptions.csv", &subs)]);
    let by = ByCustomer::new(&b, &Selection::all());
    let (from, to) = ("2024-01".parse().unwrap(), "2024-03".parse().unwrap());
    let grid = |by_: CohortBy, metric| cohort_rows(&cohorts(&b, &by, from, to, by_, metric));
    assert_eq!(
        grid(CohortBy::Quarter, CohortMetric::Mrr),
        [("2024-Q1".into(), 3, "250".into(), vec!["0.8000".into()])]
    );
    assert_eq!(
        grid(CohortBy::Quarter, CohortMetric::Customers),
        [("2024-Q1".into(), 3, "3".into(), vec!["0.6667".into()])]
    );
    // By month, every customer pays at the end of its first month: cell 0 is 1.
    assert_eq!(
        grid(CohortBy::Month, CohortMetric::Mrr),
        [
            (
                "2024-01".into(),
                2,
                "200".into(),
                vec!["1.0000".into(), "1.0000".into(), "0.5000".into()]
            ),
            (
                "2024-02".into(),
                1,
                "50".into(),
                vec!["1.0000".into(), "2.0000".into()]
            ),
        ]
    );
}

#[test]
fn filtered_cohorts_are_the_new_customers_of_the_filter() {
    // family=payroll. A pays for core from January and adds payroll in February: it enters
    // the segment, it is not a new customer, so it starts no payroll cohort (with all its
    // lines counted it was a January cohort of 100, with payroll in it from February).
    // B starts with payroll (30) in February: the February cohort, base 30. C starts with
    // core in March: no payroll, no cohort. Each month's cohort size is that month's
    // new_customers under the same filter.
    let subs = format!(
        "{HEADER}a1,A,core,100,2024-01-01,,\n\
         a2,A,payroll,20,2024-02-01,,\n\
         b1,B,payroll,30,2024-02-10,,\n\
         c1,C,core,100,2024-03-01,,\n"
    );
    let products = "id,family\ncore,core\npayroll,payroll\n";
    let b = book(&[("subscriptions.csv", &subs), ("products.csv", products)]);
    let filters = [("family".to_string(), "payroll".to_string())];
    let selection = Selection::from_filters(&b, &filters).unwrap();
    let by = ByCustomer::new(&b, &selection);
    let (from, to) = ("2024-01".parse().unwrap(), "2024-03".parse().unwrap());
    let grid = cohorts(&b, &by, from, to, CohortBy::Month, CohortMetric::Mrr);
    assert_eq!(
        cohort_rows(&grid),
        [(
            "2024-02".into(),
            1,
            "30".into(),
            vec!["1.0000".into(), "1.0000".into()]
        )]
    );
    let v = kpi_json_with(
        &b,
        "2024-01",
        "2024-03",
        Rules::Conexa,
        &[("family", "payroll")],
    );
    let new: Vec<u64> = v["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["new_customers"].as_u64().unwrap())
        .collect();
    let sizes: Vec<u64> = ["2024-01", "2024-02", "2024-03"]
        .iter()
        .map(|m| {
            grid.rows
                .iter()
                .find(|r| r.label == *m)
                .map_or(0, |r| r.customers)
        })
        .collect();
    assert_eq!(sizes, new);
}

/// A customer paying at the start whose new line the Conexa preset books as `new` (it was
/// registered after the month, so the line is not cross-sell) still grows a retained
/// customer: NRR and the expansion rate count it. March: A 1000 + B 1000 at the
/// start; A adds 500 on 2024-03-10 (`new`, A registered 2024-05-01).
/// nrr = (2000 + 500) / 2000 = 1.2500; expansion_rate = 500 / 2000 = 0.2500; grr = 1.0000.
#[test]
fn a_new_line_of_a_customer_paying_at_the_start_is_retention() {
    let b = book(&[
        (
            "subscriptions.csv",
            "id,customer_id,product_id,unit_price,start_date,end_date\n\
             A1,A,core,1000,2024-01-01,\n\
             A2,A,addon,500,2024-03-10,\n\
             B1,B,core,1000,2024-01-01,\n",
        ),
        (
            "customers.csv",
            "id,registered_on\nA,2024-05-01\nB,2024-01-01\n",
        ),
    ]);
    let v = kpi_json_with(&b, "2024-03", "2024-03", Rules::Conexa, &[]);
    let mar = &v["months"][0];
    assert_eq!(mar["mrr"], "2500.00", "{mar}");
    assert_eq!(mar["new_customers"], 0);
    assert_eq!(mar["nrr"], "1.2500");
    assert_eq!(mar["expansion_rate"], "0.2500");
    assert_eq!(mar["grr"], "1.0000");
}
