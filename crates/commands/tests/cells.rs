//! A book split by customer (each group with the shared tables, as the Spark job groups it:
//! docs/spark.md), the groups' cells summed name by name, gives the report the whole book
//! gives: `movements` and `kpis` in JSON, byte for byte.

use clap::Parser;
use expansa_commands::{execute, execute_on_cells, report_cells, Cli, Plan};
use expansa_import::{read_book_from, ImportOptions, InMemory, NoProgress};
use expansa_ledger::Book;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The tables whose rows are a customer's, and the column naming it.
const BY_CUSTOMER: &[(&str, &str)] = &[
    ("customers.csv", "id"),
    ("subscriptions.csv", "customer_id"),
    ("contracts.csv", "customer_id"),
    ("contracted_prices.csv", "customer_id"),
    ("usage.csv", "customer_id"),
    ("offers.csv", "customer_id"),
];

type Files = Vec<(String, String)>;

fn plan(args: &[&str]) -> Plan {
    let argv = ["expansa"].iter().chain(args).chain(&["--data=book"]);
    Plan::from_cli(Cli::try_parse_from(argv).unwrap()).unwrap()
}

fn book(files: &Files) -> Book {
    let files: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_bytes()))
        .collect();
    read_book_from(&InMemory(&files), &ImportOptions::default(), &NoProgress)
        .unwrap_or_else(|e| panic!("{:?}", e.0))
}

/// The book's files (CSV without quoted fields), the files of each customer's group, and the
/// shared tables with the customers' tables empty.
fn split(dir: &Path) -> (Files, Vec<Files>, Files) {
    let mut whole = Files::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !text.contains('"'),
                "{name}: a test book has no quoted fields"
            );
            whole.push((name, text));
        }
    }
    let column = |name: &str| {
        BY_CUSTOMER
            .iter()
            .find(|(t, _)| *t == name)
            .map(|(_, c)| *c)
    };
    // Each table's rows by customer (or whole, for a shared table).
    let mut customers = BTreeSet::new();
    let mut shared = Files::new();
    let mut by_customer: Vec<(String, String, BTreeMap<String, String>)> = Vec::new();
    for (name, text) in &whole {
        let mut lines = text.lines();
        let header = lines.next().unwrap().to_string();
        let Some(key) = column(name) else {
            shared.push((name.clone(), text.clone()));
            continue;
        };
        let k = header.split(',').position(|c| c == key).unwrap();
        let mut rows: BTreeMap<String, String> = BTreeMap::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let customer = line.split(',').nth(k).unwrap().to_string();
            customers.insert(customer.clone());
            let mine = rows.entry(customer).or_default();
            mine.push_str(line);
            mine.push('\n');
        }
        by_customer.push((name.clone(), header, rows));
    }
    let groups = customers
        .iter()
        .map(|c| {
            let mut files = shared.clone();
            for (name, header, rows) in &by_customer {
                let mine = rows.get(c).map_or("", String::as_str);
                files.push((name.clone(), format!("{header}\n{mine}")));
            }
            files
        })
        .collect();
    let mut empty = shared;
    for (name, header, _) in &by_customer {
        empty.push((name.clone(), format!("{header}\n")));
    }
    (whole, groups, empty)
}

fn same_by_groups(dir: &Path, reports: &[&[&str]]) {
    let (whole, groups, shared) = split(dir);
    assert!(groups.len() > 1, "{}", dir.display());
    let (whole, shared) = (book(&whole), book(&shared));
    let groups: Vec<Book> = groups.iter().map(book).collect();
    for args in reports {
        let plan = plan(args);
        let expected = execute(&plan, &whole).unwrap();
        let mut sums: BTreeMap<String, i128> = BTreeMap::new();
        for group in &groups {
            for (name, units) in report_cells(&plan, group).unwrap() {
                *sums.entry(name).or_default() += units;
            }
        }
        let got = execute_on_cells(&plan, &shared, sums).unwrap();
        assert_eq!(got, expected, "{} {args:?}", dir.display());
    }
}

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

#[test]
fn demo_by_customer() {
    same_by_groups(
        &repo("examples/demo"),
        &[
            &[
                "movements",
                "--from=2023-01",
                "--to=2024-12",
                "--format=json",
            ],
            &["kpis", "--from=2023-06", "--to=2024-12", "--format=json"],
            &[
                "kpis",
                "--from=2024-01",
                "--to=2024-06",
                "--rules=chartmogul",
                "--format=csv",
            ],
        ],
    );
}

#[test]
fn contract_and_offer_books_by_customer() {
    for book in [
        "contracts",
        "renewals-fx",
        "contracts-classes",
        "opportunities",
    ] {
        same_by_groups(
            &repo(&format!("testdata/{book}")),
            &[
                &[
                    "movements",
                    "--from=2023-01",
                    "--to=2025-12",
                    "--format=json",
                ],
                &["kpis", "--from=2023-01", "--to=2025-12", "--format=json"],
            ],
        );
    }
}

#[test]
fn what_does_not_run_on_groups() {
    let (whole, _, _) = split(&repo("examples/demo"));
    let whole = book(&whole);
    for args in [
        &[
            "movements",
            "--from=2024-01",
            "--to=2024-12",
            "--where=segment=simples",
        ][..],
        &["opportunities", "--at=2024-12-31"],
    ] {
        let refused = report_cells(&plan(args), &whole).unwrap_err().to_string();
        assert!(refused.contains("only `movements` and `kpis`"), "{refused}");
    }
    let kpis = plan(&["kpis", "--from=2024-01", "--to=2024-12"]);
    let unknown = execute_on_cells(&kpis, &whole, [("movements/99/new".to_string(), 1)]);
    assert_eq!(
        unknown.unwrap_err().to_string(),
        "movements/99/new: not a cell of the movement sums"
    );
}
