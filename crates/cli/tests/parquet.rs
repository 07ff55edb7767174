//! A folder of Parquet files is a book (`--data DIR` holding `subscriptions.parquet`), and
//! `expansa export --format parquet` writes one: a CSV book written as Parquet and read back is
//! the same book (the golden books' hand-checked reports, the KPIs), from `--data` and from a
//! store; DuckDB reads the Parquet we write (the peer's MRR from it equals ours) and we read the
//! Parquet DuckDB writes.
//!
//! The DuckDB tests need python3 with duckdb (`.ci/run` installs it), as `differential.rs`.

mod common;

use common::{command_json, expansa, movements_json};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `expansa export --data BOOK --out OUT --format FORMAT`, which must succeed.
fn export(book: &Path, out: &Path, format: &str) {
    let run = expansa()
        .args(["export", "--data"])
        .arg(book)
        .arg("--out")
        .arg(out)
        .args(["--format", format])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "export {}: {}",
        book.display(),
        String::from_utf8_lossy(&run.stderr)
    );
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every golden book, written as Parquet, prints its hand-checked reports, and the same KPIs as
/// from its CSV files; so do the demo book and the workbook fixtures' CSV book.
#[test]
fn golden_books_read_back_from_parquet_are_the_same_books() {
    let mut books: Vec<PathBuf> = std::fs::read_dir(root().join("testdata/golden"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("subscriptions.csv").is_file())
        .collect();
    books.sort();
    books.push(root().join("examples/demo"));
    books.push(root().join("testdata/workbook/book"));
    let tmp = tempfile::tempdir().unwrap();
    let mut reports = 0;
    for (k, book) in books.iter().enumerate() {
        let out = tmp.path().join(k.to_string());
        export(book, &out, "parquet");
        let csv_files: Vec<String> = names(book)
            .into_iter()
            .filter_map(|n| n.strip_suffix(".csv").map(|s| format!("{s}.parquet")))
            .collect();
        assert_eq!(names(&out), {
            let mut n = csv_files;
            n.sort();
            n
        });
        let mut ranges = vec![("2024-01".to_string(), "2024-12".to_string(), "conexa")];
        for rules in ["conexa", "chartmogul"] {
            let expected = book.join(format!("expected.{rules}.json"));
            let Ok(text) = std::fs::read_to_string(&expected) else {
                continue;
            };
            let expected: Value = serde_json::from_str(&text).unwrap();
            let months = expected["months"].as_array().unwrap();
            let from = months.first().unwrap()["month"].as_str().unwrap();
            let to = months.last().unwrap()["month"].as_str().unwrap();
            let got = movements_json(&out, &["--from", from, "--to", to, "--rules", rules]);
            assert_eq!(got, expected, "{} from Parquet", book.display());
            ranges.push((from.to_string(), to.to_string(), rules));
            reports += 1;
        }
        for (from, to, rules) in &ranges {
            let args = ["--from", from, "--to", to, "--rules", rules];
            assert_eq!(
                movements_json(&out, &args),
                movements_json(book, &args),
                "{}",
                book.display()
            );
            let range = ["--from", from.as_str(), "--to", to.as_str()];
            assert_eq!(
                command_json("kpis", &out, &range),
                command_json("kpis", book, &range),
                "{}",
                book.display()
            );
        }
        // And back to CSV: the same book again.
        let again = tmp.path().join(format!("{k}-csv"));
        export(&out, &again, "csv");
        let args = ["--from", "2023-01", "--to", "2025-12"];
        assert_eq!(movements_json(&again, &args), movements_json(book, &args));
    }
    assert!(reports >= 24, "only {reports} golden reports checked");
}

/// `export --db --format parquet` writes the store's book as Parquet; a folder holding a book
/// of either format is refused unless --force replaces it (files of the other format removed).
#[test]
fn a_store_exports_parquet_and_folders_holding_a_book_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", tmp.path().join("s.db").display());
    let demo = root().join("examples/demo");
    expansa()
        .args(["import", "--db", &db, "--data"])
        .arg(&demo)
        .assert()
        .success();
    let out = tmp.path().join("out");
    let run = |format: &str, force: bool| {
        let mut cmd = expansa();
        cmd.args(["export", "--db", &db, "--out"])
            .arg(&out)
            .args(["--format", format]);
        if force {
            cmd.arg("--force");
        }
        cmd.output().unwrap()
    };
    let done = run("parquet", false);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(String::from_utf8_lossy(&done.stdout).contains("subscriptions.parquet"));
    let args = ["--from", "2023-01", "--to", "2024-12"];
    assert_eq!(movements_json(&out, &args), movements_json(&demo, &args));
    // A Parquet book is a book: not written over.
    let refused = run("csv", false);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already holds files of a book"));
    // Replaced by the CSV files: no Parquet file is left beside them.
    assert!(run("csv", true).status.success());
    assert!(
        names(&out).iter().all(|n| n.ends_with(".csv")),
        "{:?}",
        names(&out)
    );
    assert_eq!(movements_json(&out, &args), movements_json(&demo, &args));

    // The Parquet book imported into a new store: its summary names the Parquet files.
    let parquet = tmp.path().join("parquet");
    export(&demo, &parquet, "parquet");
    let db2 = format!("sqlite:{}", tmp.path().join("s2.db").display());
    let imported = expansa()
        .args(["import", "--db", &db2, "--data"])
        .arg(&parquet)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&imported.stdout);
    assert!(imported.status.success(), "{said}");
    assert!(
        said.contains("  usage.parquet: 24 added, 0 changed"),
        "{said}"
    );
    assert!(!said.contains(".csv"), "{said}");
    // Into the store that holds the CSV book: the same rows (its decimals without the CSV's
    // padding zeros: 390 for 390.00), so nothing changes.
    let again = expansa()
        .args(["import", "--db", &db, "--data"])
        .arg(&parquet)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{said}");
    assert!(
        said.starts_with("import: no changes")
            && said.contains("subscriptions.parquet: 0 added, 0 changed"),
        "{said}"
    );
}

/// A folder with both formats is refused, naming the CSV files.
#[test]
fn a_folder_with_parquet_and_csv_files_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("b");
    export(&root().join("examples/demo"), &out, "parquet");
    std::fs::copy(
        root().join("examples/demo/customers.csv"),
        out.join("customers.csv"),
    )
    .unwrap();
    common::check_fails_with(
        &out,
        &["holds both Parquet files (subscriptions.parquet) and CSV files of a book (customers.csv)"],
    );
}

/// A CSV book holding one table as a Parquet file (`usage.parquet`) is refused by every
/// command, and an export with `--force` into it writes and removes nothing: read as CSV it
/// would have no usage, and the export would have removed `usage.parquet` as a file of the old
/// book. `--data` and `--db` typed together are refused too (not one silently ignored).
#[test]
fn a_csv_book_with_a_table_as_parquet_is_refused_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = root().join("examples/demo");
    let parquet = tmp.path().join("p");
    export(&demo, &parquet, "parquet");
    let mixed = tmp.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    for name in names(&demo) {
        if name.ends_with(".csv") && name != "usage.csv" {
            std::fs::copy(demo.join(&name), mixed.join(&name)).unwrap();
        }
    }
    std::fs::copy(parquet.join("usage.parquet"), mixed.join("usage.parquet")).unwrap();
    let before: Vec<(String, Vec<u8>)> = names(&mixed)
        .into_iter()
        .map(|n| (n.clone(), std::fs::read(mixed.join(&n)).unwrap()))
        .collect();
    let reason = "and Parquet files (usage.parquet) of a book: a book is one or the other";
    common::check_fails_with(&mixed, &[reason]);
    for format in ["csv", "parquet"] {
        let run = expansa()
            .args(["export", "--force", "--format", format, "--data"])
            .arg(&mixed)
            .arg("--out")
            .arg(&mixed)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
        let after: Vec<(String, Vec<u8>)> = names(&mixed)
            .into_iter()
            .map(|n| (n.clone(), std::fs::read(mixed.join(&n)).unwrap()))
            .collect();
        assert!(after == before, "the folder changed: {:?}", names(&mixed));
    }

    // --data and --db typed together: refused; EXPANSA_DB in the environment is a default
    // that --data overrides.
    let db = format!("sqlite:{}", tmp.path().join("none.db").display());
    let both = expansa()
        .args(["check", "--data"])
        .arg(&demo)
        .args(["--db", &db])
        .env_remove("EXPANSA_DB")
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&both.stderr).contains("--data and --db both name a book"),
        "{}",
        String::from_utf8_lossy(&both.stderr)
    );
    // Typed as EXPANSA_DB holds it: still both typed.
    let same = expansa()
        .args(["check", "--data"])
        .arg(&demo)
        .args(["--db", &db])
        .env("EXPANSA_DB", &db)
        .output()
        .unwrap();
    assert_eq!(same.status.code(), Some(2));
    let from_env = expansa()
        .args(["check", "--data"])
        .arg(&demo)
        .env("EXPANSA_DB", &db)
        .output()
        .unwrap();
    assert!(
        from_env.status.success(),
        "{}",
        String::from_utf8_lossy(&from_env.stderr)
    );
    assert!(!tmp.path().join("none.db").exists());
}

/// DuckDB reads the Parquet we write: the peer (`bench/peer_duckdb_parquet.py`: the peer's SQL
/// over `read_parquet`) prints the months we print; and we read the Parquet DuckDB writes
/// (DECIMAL(18,2), DATE, BIGINT, snappy) as the CSV book it came from.
#[test]
fn duckdb_reads_our_parquet_and_we_read_duckdbs() {
    let tools = common::shared().join("tools");
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("csv");
    common::python(
        &[
            tools.join("gen_data.py").as_os_str(),
            csv.as_os_str(),
            "3000".as_ref(),
            "36".as_ref(),
            "5".as_ref(),
        ],
        "duckdb",
    );
    let ours = tmp.path().join("ours");
    export(&csv, &ours, "parquet");
    let (from, to) = ("2023-01", "2025-12");
    let peer: Value = serde_json::from_slice(&common::python(
        &[
            root().join("bench/peer_duckdb_parquet.py").as_os_str(),
            ours.as_os_str(),
            from.as_ref(),
            to.as_ref(),
        ],
        "duckdb",
    ))
    .unwrap();
    let args = ["--from", from, "--to", to];
    let got = movements_json(&ours, &args);
    assert_eq!(got, movements_json(&csv, &args));
    let (got, theirs) = (
        got["months"].as_array().unwrap(),
        peer["months"].as_array().unwrap(),
    );
    assert_eq!(got.len(), 36);
    assert_eq!(got.len(), theirs.len());
    for (o, t) in got.iter().zip(theirs) {
        for (key, value) in t.as_object().unwrap() {
            assert_eq!(&o[key], value, "month {}, {key}", t["month"]);
        }
    }
    common::assert_every_movement_kind(got, "the Parquet book");

    // DuckDB's own Parquet, with its own types.
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    let script = format!(
        "import duckdb\n\
         c = duckdb.connect()\n\
         c.execute(\"COPY (SELECT id, customer_id, product_id, CAST(quantity AS INTEGER) AS quantity, \
         CAST(unit_price AS DECIMAL(18,2)) AS unit_price, CAST(discount_pct AS DECIMAL(5,2)) AS discount_pct, \
         CAST(billing_period_months AS BIGINT) AS billing_period_months, CAST(start_date AS DATE) AS start_date, \
         CAST(end_date AS DATE) AS end_date FROM read_csv('{csv}/subscriptions.csv', all_varchar=true)) \
         TO '{out}/subscriptions.parquet' (FORMAT parquet, ROW_GROUP_SIZE 1000)\")\n\
         c.execute(\"COPY (SELECT * FROM read_csv('{csv}/products.csv', all_varchar=true)) TO '{out}/products.parquet' (FORMAT parquet)\")\n",
        csv = csv.display(),
        out = theirs.display()
    );
    common::python(&["-c".as_ref(), script.as_ref()], "duckdb");
    let mut cmd = expansa();
    let check = cmd.args(["check", "--data"]).arg(&theirs).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // Without customers.parquet the registration days are not there: the movements only.
    std::fs::remove_file(csv.join("customers.csv")).unwrap();
    assert_eq!(movements_json(&theirs, &args), movements_json(&csv, &args));
}

/// Damaged Parquet files on which the `parquet` crate panics (fuzz/corpus/parquet/panics-*,
/// found by fuzzing the demo's files) are refused with a problem, and the panic's message is
/// not printed: the user sees the problem, not a crash report.
#[test]
fn a_panic_of_the_parquet_reader_is_a_problem_and_says_nothing_else() {
    let corpus = root().join("fuzz/corpus/parquet");
    let mut damaged: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("panics-")
        })
        .collect();
    damaged.sort();
    assert!(damaged.len() >= 5, "{damaged:?}");
    let tmp = tempfile::tempdir().unwrap();
    for file in &damaged {
        std::fs::copy(file, tmp.path().join("subscriptions.parquet")).unwrap();
        let run = expansa()
            .args(["check", "--data"])
            .arg(tmp.path())
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{}: {stderr}", file.display());
        assert!(
            stderr.starts_with("subscriptions.parquet") && !stderr.contains("panicked"),
            "{}: {stderr}",
            file.display()
        );
    }
}

/// A page whose checksum does not match (written by pyarrow with `write_page_checksum=True`,
/// then one bit of L001's unit_price 390.00 flipped: fuzz/corpus/parquet/crc-mismatch-*) is a
/// damaged file, said at its row group: never read as other money.
#[test]
fn a_page_whose_checksum_does_not_match_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let book = tmp.path().join("b");
    export(&root().join("examples/demo"), &book, "parquet");
    std::fs::copy(
        root().join("fuzz/corpus/parquet/crc-mismatch-unit-price.parquet"),
        book.join("subscriptions.parquet"),
    )
    .unwrap();
    common::check_fails_with(
        &book,
        &[
            "subscriptions.parquet[row group 1]:1: file: : cannot be read as Parquet",
            "CRC checksum mismatch",
        ],
    );
}
