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

/// Every row of a book as text, table by table (what `Book::part` must keep).
fn rows(b: &Book) -> Vec<String> {
    let c = &b.customers;
    let mut out = vec![format!(
        "currency {:?} from_file {}",
        b.currency, c.from_file
    )];
    for i in 0..c.len() {
        let attributes: Vec<_> = c
            .attributes
            .iter()
            .map(|(n, col)| format!("{n}={:?}", col.get_opt(i)))
            .collect();
        out.push(format!(
            "customer {} {:?} {:?} {:?} {:?} {:?} {attributes:?}",
            c.ids.get(i as u32),
            c.registered_on[i],
            c.name.get_opt(i),
            c.segment.get_opt(i),
            c.country.get_opt(i),
            c.channel.get_opt(i),
        ));
    }
    out.extend(b.products.ids.iter().map(|p| format!("product {p}")));
    for (l, line) in b.lines.items.iter().enumerate() {
        let l = l as u32;
        out.push(format!(
            "line {} contract {} sold {} revises {:?} {line:?}",
            b.lines.ids.get(l),
            b.lines.contract_id(l),
            b.lines.sold_on(l),
            line.revises().map(|r| b.lines.ids.get(r)),
        ));
    }
    out.extend(b.contracts.iter().map(|k| format!("{k:?}")));
    out.extend(b.contracted_prices.iter().map(|k| format!("{k:?}")));
    out.extend(b.fx_rates.iter().map(|k| format!("{k:?}")));
    out.extend(b.marketing_spend.iter().map(|k| format!("{k:?}")));
    out.extend(b.usage.iter().map(|k| format!("{k:?}")));
    out.extend(b.offers.iter().map(|o| {
        format!(
            "{o:?} line {:?}",
            o.line.map(|l| b.lines.ids.get(l).to_string())
        )
    }));
    out
}

/// `Book::part` of each customer gives the book the importer reads from that customer's rows
/// alone (its cells are the same), and the parts of a partition of the customers add up to the
/// whole book's report.
fn parts_add_up(dir: &Path, reports: &[&[&str]]) {
    let (whole_files, groups, _) = split(dir);
    let whole = book(&whole_files);
    let (_, _, shared) = split(dir);
    let shared = book(&shared);
    let customers: Vec<String> = whole.customers.ids.iter().map(str::to_string).collect();
    let mask = |pick: &dyn Fn(usize) -> bool| (0..customers.len()).map(pick).collect::<Vec<_>>();
    let mut ids: Vec<&String> = customers.iter().collect();
    ids.sort();
    for args in reports {
        let plan = plan(args);
        // One customer at a time, against the importer's book of its rows.
        for (id, group) in ids.iter().zip(&groups) {
            let c = whole.customers.ids.find(id).unwrap() as usize;
            let part = whole.part(&mask(&|i| i == c));
            assert_eq!(
                rows(&part),
                rows(&book(group)),
                "{} customer {id}",
                dir.display()
            );
            assert_eq!(
                report_cells(&plan, &part).unwrap(),
                report_cells(&plan, &book(group)).unwrap(),
                "{} {args:?} customer {id}",
                dir.display()
            );
        }
        // Three parts (every third customer) add up to the whole.
        let expected = execute(&plan, &whole).unwrap();
        let mut sums: BTreeMap<String, i128> = BTreeMap::new();
        for k in 0..3 {
            for (name, units) in report_cells(&plan, &whole.part(&mask(&|i| i % 3 == k))).unwrap() {
                *sums.entry(name).or_default() += units;
            }
        }
        assert_eq!(
            execute_on_cells(&plan, &shared, sums).unwrap(),
            expected,
            "{} {args:?}",
            dir.display()
        );
        // Every customer: the book itself.
        let all = whole.part(&mask(&|_| true));
        assert_eq!(execute(&plan, &all).unwrap(), expected);
    }
}

#[test]
fn parts_of_a_book_are_its_groups_and_add_up() {
    let reports: &[&[&str]] = &[
        &[
            "movements",
            "--from=2023-01",
            "--to=2025-12",
            "--format=json",
        ],
        &["kpis", "--from=2023-01", "--to=2025-12", "--format=json"],
    ];
    for book in [
        "examples/demo",
        "testdata/contracts",
        "testdata/renewals-fx",
        "testdata/contracts-classes",
        "testdata/opportunities",
    ] {
        parts_add_up(&repo(book), reports);
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
