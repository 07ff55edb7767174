//! The mapping engine and its shipped presets (Baremetrics, ChartMogul, Chargebee, the generic
//! pt-BR/English spreadsheet) on fixtures written from the vendors' documented templates
//! (cited in `fixtures/*/NOTES.md`, with every expected line and MRR worked out by hand), a
//! user's own mappings (a join, value maps, a filter, constants, dd/mm/yyyy dates, decimal
//! commas; a JSON API list with nested items), and the refusals a user meets.

mod common;

use common::{d as day, dec, fixtures, mrr_on, read_in as read, usd};
use expansa_import::TextEncoding;
use expansa_ledger::{Book, Currency, Line};
use expansa_sources::mapping::{self, Mapping};
use expansa_sources::{convert_into, Conversion, Input, Options, Outcome, SourceKind, Spec};
use std::path::{Path, PathBuf};

fn options(currency: Currency) -> Options {
    Options {
        currency,
        ..Options::default()
    }
}

/// Converts, returning the problems as text on error.
fn convert(
    spec: &Spec,
    input: &Path,
    options: &Options,
    out: &Path,
) -> Result<Conversion, Vec<String>> {
    convert_into(spec, &Input::new(input, TextEncoding::UTF_8), options, out)
        .map_err(|e| e.0.iter().map(ToString::to_string).collect())
}

/// Converts `input` into a fresh folder and reads the written book back in `currency`: the
/// folder, the report and the book.
fn converted(
    spec: &Spec,
    input: &Path,
    options: &Options,
    currency: Currency,
) -> (tempfile::TempDir, Conversion, Book) {
    let out = tempfile::tempdir().unwrap();
    let c = convert(spec, input, options, out.path()).expect("converts");
    let book = read(out.path(), currency);
    (out, c, book)
}

fn line<'a>(book: &'a Book, id: &str) -> &'a Line {
    let idx = book
        .lines
        .ids
        .find(id)
        .unwrap_or_else(|| panic!("no line {id}"));
    &book.lines.items[idx as usize]
}

/// Checks a line: customer, product, quantity, unit price, discount, period in months, start,
/// end, revises.
#[allow(clippy::too_many_arguments)]
fn check(
    book: &Book,
    id: &str,
    customer: &str,
    product: &str,
    quantity: &str,
    unit_price: &str,
    discount_pct: &str,
    months: u16,
    start: &str,
    end: Option<&str>,
    revises: Option<&str>,
) {
    let l = line(book, id);
    assert_eq!(
        book.customers.ids.get(l.customer),
        customer,
        "{id} customer"
    );
    assert_eq!(book.products.ids.get(l.product), product, "{id} product");
    assert_eq!(l.quantity.get(), dec(quantity), "{id} quantity");
    assert_eq!(l.unit_price.get(), dec(unit_price), "{id} unit price");
    assert_eq!(l.discount_pct.get(), dec(discount_pct), "{id} discount");
    assert_eq!(
        l.billing_period.whole_months().unwrap_or(0),
        months,
        "{id} period"
    );
    assert_eq!(l.start, day(start), "{id} start");
    assert_eq!(l.end, end.map(day), "{id} end");
    assert_eq!(
        l.revises().map(|r| book.lines.ids.get(r).to_string()),
        revises.map(str::to_string),
        "{id} revises"
    );
}

/// Rows per (outcome, reason) in the report.
fn count(c: &Conversion, outcome: Outcome, reason: &str) -> u64 {
    c.summary
        .reasons
        .iter()
        .filter(|r| r.outcome == outcome && r.reason == reason)
        .map(|r| r.rows)
        .sum()
}

fn total_rows(c: &Conversion) -> u64 {
    c.summary.reasons.iter().map(|r| r.rows).sum()
}

fn customer_name(book: &Book, id: &str) -> Option<String> {
    let idx = book.customers.ids.find(id)?;
    book.customers
        .name
        .get_opt(idx as usize)
        .map(str::to_string)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn user(text: &str) -> Spec {
    Spec::Mapping(Mapping::parse("user", text).unwrap())
}

// ---------------------------------------------------------------------------------------------
// Presets.

#[test]
fn baremetrics_template() {
    let (_out, c, book) = converted(
        &Spec::Source(SourceKind::Baremetrics),
        &fixtures("baremetrics").join("subscriptions.csv"),
        &options(usd()),
        usd(),
    );
    // NOTES.md, Baremetrics.
    assert_eq!(book.lines.len(), 4);
    check(
        &book,
        "subscription_1",
        "customer_1",
        "plan_1",
        "1",
        "50",
        "0",
        1,
        "2024-01-15",
        None,
        None,
    );
    check(
        &book,
        "subscription_2",
        "customer_1",
        "plan_2",
        "1",
        "50",
        "0",
        1,
        "2024-01-31",
        Some("2024-03-09"),
        None,
    );
    check(
        &book,
        "subscription_3",
        "customer_2",
        "plan_3",
        "2",
        "1200",
        "0",
        12,
        "2024-02-01",
        None,
        None,
    );
    check(
        &book,
        "subscription_4",
        "customer_3",
        "plan_4",
        "1",
        "300",
        "0",
        3,
        "2024-03-01",
        None,
        None,
    );
    assert_eq!(
        customer_name(&book, "customer_2").as_deref(),
        Some("Bob Builders")
    );
    assert_eq!(mrr_on(&book, "2024-03-31"), dec("350"));
    assert_eq!(mrr_on(&book, "2024-02-29"), dec("300"));
    assert_eq!(count(&c, Outcome::Mapped, "recurring"), 4);
    assert_eq!(count(&c, Outcome::Skipped, "not_billable"), 1);
    assert_eq!(count(&c, Outcome::Skipped, "duplicate"), 1);
    assert_eq!(total_rows(&c), 6, "one report row per source row");
}

#[test]
fn chartmogul_invoice_line_items() {
    let (_out, c, book) = converted(
        &Spec::Source(SourceKind::Chartmogul),
        &fixtures("chartmogul"),
        &options(usd()),
        usd(),
    );
    // NOTES.md, ChartMogul.
    assert_eq!(book.lines.len(), 4);
    check(
        &book,
        "sub_1",
        "cus_1",
        "bronze_monthly",
        "1",
        "100",
        "0",
        1,
        "2024-01-01",
        Some("2024-02-29"),
        None,
    );
    check(
        &book,
        "sub_1@2024-03-01",
        "cus_1",
        "gold_monthly",
        "1",
        "250",
        "0",
        1,
        "2024-03-01",
        Some("2024-03-31"),
        Some("sub_1"),
    );
    check(
        &book,
        "sub_2",
        "cus_2",
        "pro_yearly",
        "5",
        "240",
        "0",
        12,
        "2024-01-10",
        Some("2025-01-09"),
        None,
    );
    check(
        &book,
        "sub_3",
        "cus_3",
        "bronze_monthly",
        "1",
        "100",
        "0",
        1,
        "2024-02-15",
        Some("2024-03-14"),
        None,
    );
    assert_eq!(
        customer_name(&book, "cus_1").as_deref(),
        Some("Wayne Enterprises")
    );
    assert_eq!(customer_name(&book, "cus_3"), None);
    assert_eq!(mrr_on(&book, "2024-03-31"), dec("350"));
    assert_eq!(mrr_on(&book, "2024-02-29"), dec("300"));
    assert_eq!(count(&c, Outcome::Mapped, "recurring"), 4);
    assert_eq!(count(&c, Outcome::Merged, "recurring"), 1);
    assert_eq!(count(&c, Outcome::Skipped, "one_off"), 1);
    assert_eq!(count(&c, Outcome::Skipped, "duplicate"), 1);
    assert_eq!(total_rows(&c), 7);
}

#[test]
fn chargebee_export_with_addons() {
    let (out, c, book) = converted(
        &Spec::Source(SourceKind::Chargebee),
        &fixtures("chargebee"),
        &options(usd()),
        usd(),
    );
    // NOTES.md, Chargebee.
    assert_eq!(book.lines.len(), 5);
    check(
        &book,
        "sub_A",
        "cus_A",
        "basic-monthly",
        "3",
        "29",
        "0",
        1,
        "2024-01-05",
        None,
        None,
    );
    check(
        &book,
        "sub_A:extra-storage",
        "cus_A",
        "extra-storage",
        "2",
        "5",
        "0",
        1,
        "2024-01-05",
        None,
        None,
    );
    check(
        &book,
        "sub_A:priority-support",
        "cus_A",
        "priority-support",
        "1",
        "10",
        "0",
        1,
        "2024-01-05",
        None,
        None,
    );
    check(
        &book,
        "sub_B",
        "cus_B",
        "pro-annual",
        "1",
        "1200",
        "0",
        12,
        "2024-01-01",
        Some("2024-12-31"),
        None,
    );
    check(
        &book,
        "sub_D",
        "cus_D",
        "basic-monthly",
        "1",
        "29",
        "0",
        1,
        "2024-01-10",
        Some("2024-02-10"),
        None,
    );
    assert_eq!(customer_name(&book, "cus_B").as_deref(), Some("Globex"));
    assert_eq!(mrr_on(&book, "2024-03-31"), dec("207"));
    assert_eq!(count(&c, Outcome::Mapped, "recurring"), 3);
    assert_eq!(count(&c, Outcome::Skipped, "trial_at_zero"), 1);
    assert_eq!(count(&c, Outcome::Skipped, "not_billable"), 1);
    assert_eq!(total_rows(&c), 5);
    // The add-ons are products of kind addon.
    let products = std::fs::read_to_string(out.path().join("products.csv")).unwrap();
    assert!(products.contains("extra-storage,,,,addon,"), "{products}");
}

#[test]
fn chargebee_without_plans_reads_monthly_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let csv = std::fs::read_to_string(fixtures("chargebee").join("subscriptions.csv")).unwrap();
    // Only sub_B (its own price) can be read without plans.csv; the others need the plan's.
    let rows: Vec<&str> = csv
        .lines()
        .filter(|l| l.starts_with("subscription[") || l.starts_with("sub_B"))
        .collect();
    let input = write(dir.path(), "subscriptions.csv", &(rows.join("\n") + "\n"));
    let c = convert(
        &Spec::Source(SourceKind::Chargebee),
        &input,
        &options(usd()),
        out.path(),
    )
    .expect("converts");
    assert_eq!(
        c.summary.notes,
        vec!["1 rows gave no billing interval: read as monthly".to_string()]
    );
    let book = read(out.path(), usd());
    check(
        &book,
        "sub_B",
        "cus_B",
        "pro-annual",
        "1",
        "1200",
        "0",
        1,
        "2024-01-01",
        Some("2024-12-31"),
        None,
    );
}

#[test]
fn generic_spreadsheet_with_pt_br_headers() {
    let spec = Spec::Mapping(Mapping::parse("planilha", mapping::GENERIC).unwrap());
    let (_out, c, book) = converted(
        &spec,
        &fixtures("mapping").join("planilha.csv"),
        &Options::default(),
        Currency::BRL,
    );
    // NOTES.md, planilha: no id column, so the lines are named file:line.
    assert_eq!(book.lines.len(), 3);
    check(
        &book,
        "cli-1/erp/2024-01-01",
        "cli-1",
        "erp",
        "2",
        "150",
        "10",
        1,
        "2024-01-01",
        None,
        None,
    );
    check(
        &book,
        "cli-2/erp/2024-02-01",
        "cli-2",
        "erp",
        "1",
        "1800",
        "0",
        12,
        "2024-02-01",
        None,
        None,
    );
    check(
        &book,
        "cli-3/erp/2024-01-01",
        "cli-3",
        "erp",
        "1",
        "150",
        "0",
        1,
        "2024-01-01",
        Some("2024-02-29"),
        None,
    );
    assert_eq!(
        customer_name(&book, "cli-2").as_deref(),
        Some("Farmácia Saúde")
    );
    assert_eq!(mrr_on(&book, "2024-03-31"), dec("420"));
    assert_eq!(mrr_on(&book, "2024-01-31"), dec("420"));
    assert_eq!(count(&c, Outcome::Mapped, "recurring"), 3);
}

// ---------------------------------------------------------------------------------------------
// A user's mappings.

#[test]
fn user_mapping_with_join_values_filter_constants_dates_and_commas() {
    let m = Mapping::load(&fixtures("mapping").join("vendas.toml")).unwrap();
    assert_eq!(m.name, "vendas");
    let (out, c, book) = converted(
        &Spec::Mapping(m),
        &fixtures("mapping"),
        &Options::default(),
        Currency::BRL,
    );
    // NOTES.md, vendas.
    assert_eq!(book.lines.len(), 3);
    check(
        &book,
        "C-1",
        "10",
        "basico",
        "1",
        "1234.5",
        "0",
        1,
        "2024-02-01",
        None,
        None,
    );
    check(
        &book,
        "C-2",
        "11",
        "pro",
        "2",
        "99.9",
        "0",
        1,
        "2024-01-15",
        Some("2024-02-29"),
        None,
    );
    check(
        &book,
        "C-5",
        "13",
        "pro",
        "1",
        "300",
        "0",
        3,
        "2024-03-01",
        None,
        None,
    );
    assert_eq!(
        customer_name(&book, "10").as_deref(),
        Some("Padaria Pão Quente")
    );
    let customers = std::fs::read_to_string(out.path().join("customers.csv")).unwrap();
    assert!(
        customers.contains("11,Oficina do Zé,,serviços,BR,"),
        "{customers}"
    );
    assert_eq!(mrr_on(&book, "2024-02-29"), dec("1434.3"));
    assert_eq!(mrr_on(&book, "2024-03-31"), dec("1334.5"));
    assert_eq!(count(&c, Outcome::Mapped, "recurring"), 3);
    assert_eq!(count(&c, Outcome::Skipped, "trial_at_zero"), 1);
    assert_eq!(count(&c, Outcome::Skipped, "filtered"), 1);
    let log = std::fs::read_to_string(out.path().join("conversion.csv")).unwrap();
    assert!(log.contains("vendas.csv,5,C-4,skipped,filtered,,"), "{log}");
}

#[test]
fn json_api_list_one_line_per_nested_item() {
    let m = Mapping::load(&fixtures("mapping").join("api.toml")).unwrap();
    let opts = Options {
        timezone: expansa_sources::time::time_zone("America/Sao_Paulo").unwrap(),
        ..Options::default()
    };
    let (_out, c, book) = converted(
        &Spec::Mapping(m),
        &fixtures("mapping").join("assinaturas.json"),
        &opts,
        Currency::BRL,
    );
    // NOTES.md, api.
    assert_eq!(book.lines.len(), 3);
    check(
        &book,
        "11",
        "101",
        "7",
        "2",
        "49.9",
        "0",
        1,
        "2024-01-10",
        None,
        None,
    );
    check(
        &book,
        "12",
        "101",
        "8",
        "1",
        "20",
        "0",
        1,
        "2024-01-10",
        None,
        None,
    );
    check(
        &book,
        "21",
        "102",
        "7",
        "1",
        "1200",
        "0",
        12,
        "2023-06-01",
        Some("2024-01-31"),
        None,
    );
    assert_eq!(customer_name(&book, "101").as_deref(), Some("Ana Souza"));
    assert_eq!(mrr_on(&book, "2024-03-31"), dec("119.8"));
    assert_eq!(mrr_on(&book, "2024-01-31"), dec("219.8"));
    assert_eq!(count(&c, Outcome::Mapped, "recurring"), 3);
    assert_eq!(count(&c, Outcome::Skipped, "not_used"), 1);
}

#[test]
fn dd_mm_yyyy_through_extends() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "planilha.csv",
        "cliente;produto;valor;início;fim\nc1;p;10,50;01/02/2024;31/03/2024\n",
    );
    let spec = user("extends = \"planilha\"\n[input]\ndate_format = \"%d/%m/%Y\"\n");
    let (_out, _, book) = converted(&spec, &input, &Options::default(), Currency::BRL);
    check(
        &book,
        "c1/p/2024-02-01",
        "c1",
        "p",
        "1",
        "10.5",
        "0",
        1,
        "2024-02-01",
        Some("2024-03-31"),
        None,
    );
}

#[test]
fn weekly_billing_is_written_as_interval_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "s.csv",
        "id,cliente,produto,valor,periodicidade,inicio\nw1,c1,p,10.00,2 weeks,2024-01-01\nq1,c1,q,90.00,quarterly,2024-01-01\n",
    );
    let spec = Spec::Mapping(Mapping::parse("planilha", mapping::GENERIC).unwrap());
    convert(&spec, &input, &Options::default(), out.path()).expect("converts");
    let lines = std::fs::read_to_string(out.path().join("subscriptions.csv")).unwrap();
    assert!(
        lines.contains("w1,c1,,p,1,10,,,,week,2,2024-01-01,,,"),
        "{lines}"
    );
    assert!(
        lines.contains("q1,c1,,q,1,90,,,3,,,2024-01-01,,,"),
        "{lines}"
    );
}

// ---------------------------------------------------------------------------------------------
// Refusals: each is a problem `file:line: column: value: reason`, and nothing is published.

const BAREMETRICS_HEADER: &str = "plan_oid,plan_name,plan_currency,plan_amount,plan_interval,plan_interval_count,customer_oid,customer_name,customer_email,subscription_oid,subscription_started_at,subscription_canceled_at,subscription_quantity\n";

fn baremetrics(rows: &str) -> (tempfile::TempDir, Result<Conversion, Vec<String>>) {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "subscriptions.csv",
        &format!("{BAREMETRICS_HEADER}{rows}"),
    );
    let r = convert(
        &Spec::Source(SourceKind::Baremetrics),
        &input,
        &options(usd()),
        out.path(),
    );
    (out, r)
}

#[test]
fn refuses_an_ambiguous_date() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "planilha.csv",
        "Cliente;Produto;Valor;Início\nc1;p;10,00;01/02/2024\n",
    );
    let spec = Spec::Mapping(Mapping::parse("planilha", mapping::GENERIC).unwrap());
    let e = convert(&spec, &input, &Options::default(), out.path()).unwrap_err();
    assert_eq!(
        e,
        vec![
            "planilha.csv:2: início: 01/02/2024: is not a date the mapping can read without a \
              date format: 01/02/2024 could be 1 February or 2 January; declare date_format \
              (such as \"%d/%m/%Y\") in [input] or on the field"
        ]
    );
}

#[test]
fn refuses_a_file_that_is_not_the_template() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "subscriptions.csv",
        "id,customer,status\nsub_1,cus_1,active\n",
    );
    let e = convert(
        &Spec::Source(SourceKind::Baremetrics),
        &input,
        &options(usd()),
        out.path(),
    )
    .unwrap_err();
    assert_eq!(
        e,
        vec![
            "subscriptions.csv:1: subscription_oid: : no such column: is this a Baremetrics \
              subscription import template? (the header has id, customer, status)"
        ]
    );
}

#[test]
fn refuses_contradicting_rows_and_skips_identical_ones() {
    let (_, r) = baremetrics(
        "plan_1,SEO,USD,5000,month,1,customer_1,A,a@example.com,subscription_1,2024-01-15,,1\n\
         plan_1,SEO,USD,6000,month,1,customer_1,A,a@example.com,subscription_1,2024-01-15,,1\n",
    );
    assert_eq!(
        r.unwrap_err(),
        vec![
            "subscriptions.csv:3: subscription_oid: subscription_1: contradicts line 2: the \
              same id with other values"
        ]
    );
}

#[test]
fn refuses_an_unknown_currency() {
    let (_, r) = baremetrics(
        "plan_1,SEO,XXY,5000,month,1,customer_1,A,a@example.com,subscription_1,2024-01-15,,1\n",
    );
    assert_eq!(
        r.unwrap_err(),
        vec!["subscriptions.csv:2: plan_currency: XXY: is not an ISO 4217 currency code"]
    );
}

#[test]
fn skip_refused_writes_the_other_rows() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "subscriptions.csv",
        &format!(
            "{BAREMETRICS_HEADER}plan_1,SEO,XXY,5000,month,1,c1,A,a@example.com,s1,2024-01-15,,1\n\
             plan_1,SEO,USD,5000,month,1,c2,B,b@example.com,s2,2024-01-15,,1\n"
        ),
    );
    let opts = Options {
        skip_refused: true,
        ..options(usd())
    };
    let c = convert(
        &Spec::Source(SourceKind::Baremetrics),
        &input,
        &opts,
        out.path(),
    )
    .expect("converts");
    assert_eq!(count(&c, Outcome::Refused, "bad_value"), 1);
    let book = read(out.path(), usd());
    assert_eq!(book.lines.len(), 1);
    assert!(
        book.customers.ids.find("c1").is_none(),
        "a refused row writes nothing"
    );
}

#[test]
fn refuses_a_line_item_of_an_unknown_invoice() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    for f in ["plans.csv", "invoices.csv"] {
        std::fs::copy(fixtures("chartmogul").join(f), dir.path().join(f)).unwrap();
    }
    write(
        dir.path(),
        "invoice_line_items.csv",
        "external_id,invoice_external_id,type,subscription_external_id,plan_external_id,service_period_start,service_period_end,amount_in_cents,quantity\n\
         li_1,inv_9,subscription,sub_1,bronze_monthly,2024-01-01,2024-02-01,10000,1\n",
    );
    let e = convert(
        &Spec::Source(SourceKind::Chartmogul),
        dir.path(),
        &options(usd()),
        out.path(),
    )
    .unwrap_err();
    assert_eq!(
        e,
        vec![
            "invoice_line_items.csv:2: invoice_external_id: inv_9: no row of invoices.csv has \
              external_id = inv_9"
        ]
    );
}

#[test]
fn refuses_two_service_periods_of_one_subscription_at_other_terms() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    for f in ["plans.csv", "invoices.csv"] {
        std::fs::copy(fixtures("chartmogul").join(f), dir.path().join(f)).unwrap();
    }
    write(
        dir.path(),
        "invoice_line_items.csv",
        "external_id,invoice_external_id,type,subscription_external_id,plan_external_id,service_period_start,service_period_end,amount_in_cents,quantity\n\
         li_1,inv_1,subscription,sub_1,bronze_monthly,2024-01-01,2024-02-01,10000,1\n\
         li_2,inv_1,subscription,sub_1,bronze_monthly,2024-01-01,2024-02-01,12000,1\n",
    );
    let e = convert(
        &Spec::Source(SourceKind::Chartmogul),
        dir.path(),
        &options(usd()),
        out.path(),
    )
    .unwrap_err();
    assert_eq!(
        e,
        vec![
            "invoice_line_items.csv:3: row: sub_1: contradicts line 2: the same service period \
              of sub_1 at other terms"
        ]
    );
}

#[test]
fn refuses_a_decimal_comma_not_declared() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "s.csv",
        "id,cliente,produto,valor,inicio\n1,c,p,\"10,50\",2024-01-01\n",
    );
    let spec = Spec::Mapping(Mapping::parse("planilha", mapping::GENERIC).unwrap());
    let e = convert(&spec, &input, &Options::default(), out.path()).unwrap_err();
    assert_eq!(
        e,
        vec![
            "s.csv:2: valor: 10,50: is not a decimal number with a point: if commas mark \
              decimals here (1.234,56), declare decimal = \"comma\" in the mapping's [input]"
        ]
    );
}

#[test]
fn a_status_the_mapping_does_not_know_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "subscriptions.csv",
        "subscription[id],customer[id],subscription[plan_id],subscription[plan_unit_price],subscription[status],subscription[started_at]\n\
         s1,c1,p,1000,dunning,2024-01-01 00:00:00\n",
    );
    let e = convert(
        &Spec::Source(SourceKind::Chargebee),
        &input,
        &options(usd()),
        out.path(),
    )
    .unwrap_err();
    assert_eq!(
        e,
        vec![
            "subscriptions.csv:2: subscription[status]: dunning: is not a status the mapping \
              knows: add it to [values.status] (billable, or { skip = \"reason\" })"
        ]
    );
}

#[test]
fn a_bad_mapping_file_names_its_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "minha.toml",
        "[input]\ndate_format = \"%d/%m/%Y\"\n\n[fields]\nid = \"id\"\ncliente = \"cliente\"\n",
    );
    let e = Mapping::load(&path).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "minha.toml:6: fields.cliente: : is not a book field (the fields are id, customer_id,"
        ),
        "{e}"
    );
}

#[test]
fn amount_less_tax_inexact_quantities_and_zero_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "s.csv",
        "id,cliente,produto,total,imposto,qtd,inicio\n\
         a,c,p,110.00,10.00,4,2024-01-01\n\
         b,c,q,0,,1,2024-01-01\n\
         d,c,r,100.00,,3,2024-01-01\n",
    );
    let spec = user(
        "[fields]\nid = \"id\"\ncustomer_id = \"cliente\"\nproduct_id = \"produto\"\n\
         amount = { column = \"total\", subtract = [\"imposto\"] }\nquantity = \"qtd\"\n\
         start_date = \"inicio\"\n",
    );
    let (_out, c, book) = converted(&spec, &input, &Options::default(), Currency::BRL);
    // (110 - 10) for 4 units: 25 each. 100 for 3 units is not exact: 1 unit at 100.
    check(
        &book,
        "a",
        "c",
        "p",
        "4",
        "25",
        "0",
        1,
        "2024-01-01",
        None,
        None,
    );
    check(
        &book,
        "d",
        "c",
        "r",
        "1",
        "100",
        "0",
        1,
        "2024-01-01",
        None,
        None,
    );
    assert!(book.lines.ids.find("b").is_none());
    assert_eq!(count(&c, Outcome::Skipped, "zero_amount"), 1);
    assert_eq!(mrr_on(&book, "2024-01-31"), dec("200"));
    assert_eq!(
        c.summary.notes,
        vec![
            "the user mapping gives no billing interval: every line is read as monthly".to_string()
        ]
    );
}

#[test]
fn odd_values_are_refused_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let spec = || Spec::Mapping(Mapping::parse("planilha", mapping::GENERIC).unwrap());
    // A billing period of 400 million years.
    let out = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "a.csv",
        "id,cliente,produto,valor,periodicidade,inicio\n1,c,p,10,400000000 years,2024-01-01\n",
    );
    assert_eq!(
        convert(&spec(), &input, &Options::default(), out.path()).unwrap_err(),
        vec!["a.csv:2: periodicidade: 400000000 years: is a billing period longer than 100 years"]
    );
    // Amounts at the edge of the decimal range, a tiny quantity, a JSON-like cell, a date far out.
    let out = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "b.csv",
        "id,cliente,produto,valor,quantidade,inicio,fim\n\
         1,c,p,79228162514264337593543950335,0.0000000000000000000000000001,2024-01-01,\n\
         2,c,p,-5,1,2024-01-01,\n\
         3,c,p,1e3,1,2024-01-01,\n\
         4,c,p,10,1,99999-01-01,\n\
         5,c,p,10,1,2024-01-01,2023-01-01\n",
    );
    // Row 1 is within what a mapping reads (the importer judges the book it makes).
    let e = convert(&spec(), &input, &Options::default(), out.path()).unwrap_err();
    assert_eq!(
        e,
        [
            "b.csv:3: valor: -5: is negative: a price is 0 or more".to_string(),
            "b.csv:4: valor: 1e3: is not a decimal number (digits with a point, such as 1234.56)"
                .to_string(),
            "b.csv:5: inicio: 99999-01-01: is not a date or timestamp (YYYY-MM-DD, RFC 3339 such \
             as 2024-01-31T12:00:00Z, YYYY-MM-DD HH:MM:SS in UTC, or unix seconds)"
                .to_string(),
            "b.csv:6: fim: 2023-01-01: ends (2023-01-01) before the line starts (2024-01-01)"
                .to_string(),
        ]
    );
}

/// The pt-BR spreadsheet of `generic_spreadsheet_with_pt_br_headers`, saved by LibreOffice
/// (`soffice --headless --infilter="CSV:59,34,76,1,,1046" --convert-to xlsx|ods planilha.csv`:
/// `;`, UTF-8, pt-BR numbers, so prices and dates are real numbers and dates in the cells), read
/// by the same mapping: the same lines, ids included (a table without an id column names its
/// lines by what they hold, not by the file).
#[test]
fn the_same_spreadsheet_saved_as_xlsx_and_ods() {
    let spec = Spec::Mapping(Mapping::parse("planilha", mapping::GENERIC).unwrap());
    let lines = |file: &str| {
        let out = tempfile::tempdir().unwrap();
        convert(
            &spec,
            &fixtures("mapping").join(file),
            &Options::default(),
            out.path(),
        )
        .unwrap_or_else(|e| panic!("{file}: {e:?}"));
        let text = std::fs::read_to_string(out.path().join("subscriptions.csv")).unwrap();
        text.lines().map(str::to_string).collect::<Vec<_>>()
    };
    let csv = lines("planilha.csv");
    assert_eq!(csv.len(), 4);
    assert_eq!(lines("planilha.xlsx"), csv);
    assert_eq!(lines("planilha.ods"), csv);
    // A mapping that says the CSV's decimals are commas reads the workbook's number cells as
    // numbers all the same.
    let comma = Spec::Mapping(
        Mapping::parse(
            "comma",
            "extends = \"planilha\"\n[input]\ndecimal = \"comma\"\n",
        )
        .unwrap(),
    );
    let out = tempfile::tempdir().unwrap();
    convert(
        &comma,
        &fixtures("mapping").join("planilha.xlsx"),
        &Options::default(),
        out.path(),
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let text = std::fs::read_to_string(out.path().join("subscriptions.csv")).unwrap();
    assert_eq!(text.lines().map(str::to_string).collect::<Vec<_>>(), csv);
    // Problems name the workbook, the sheet and its row.
    let out = tempfile::tempdir().unwrap();
    let m = Mapping::parse(
        "strict",
        "extends = \"planilha\"\n[fields]\nunit_price = \"preço_inexistente\"\n",
    );
    {
        let e = convert(
            &Spec::Mapping(m.unwrap()),
            &fixtures("mapping").join("planilha.xlsx"),
            &Options::default(),
            out.path(),
        )
        .unwrap_err();
        assert!(e[0].starts_with("planilha.xlsx[planilha]:1: "), "{e:?}");
    }
}
