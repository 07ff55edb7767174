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
    assert_eq!(filtered("customer", "B"), Value::Null);
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
