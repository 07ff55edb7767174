//! Import errors as a user meets them: a book saved by Excel in Windows-1252, problems that
//! only follow from another one (never listed), every check in one run, revises that cannot
//! be, and a book in one foreign currency.

mod common;

use common::{expansa, movements_json};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/import")
        .join(name)
}

/// Writes a book into a fresh temporary folder.
fn book(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

/// `expansa check --data DIR ARGS...`: must fail with exit code 1; its problems, one a line.
fn check_problems(dir: &Path, args: &[&str]) -> Vec<String> {
    let out = expansa()
        .args(["check", "--data"])
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    let mut lines: Vec<String> = err.lines().map(str::to_string).collect();
    let last = lines.pop().unwrap();
    assert_eq!(
        last,
        format!(
            "error: the book has {} problem(s); nothing was loaded",
            lines.len()
        )
    );
    lines
}

const WINDOWS_1252: &str = "the file is not UTF-8; it looks like Windows-1252 (Latin-1), as \
                            Excel saves CSV in Brazil: pass --encoding windows-1252, or save it \
                            as CSV UTF-8";

#[test]
fn a_windows_1252_book_is_one_problem_per_file_and_reads_with_encoding() {
    let dir = fixture("windows-1252");
    assert_eq!(
        check_problems(&dir, &[]),
        [
            format!("subscriptions.csv:2: customer_id: padaria-são-josé: {WINDOWS_1252}"),
            format!("customers.csv:2: id: padaria-são-josé: {WINDOWS_1252}"),
        ],
        "one problem per file, and no line of an 'unknown customer'"
    );
    for name in ["windows-1252", "latin1", "ISO-8859-1"] {
        expansa()
            .args(["check", "--data"])
            .arg(&dir)
            .args(["--encoding", name])
            .assert()
            .success()
            .stdout(predicates::str::contains("2 customers"))
            .stdout(predicates::str::contains("3 lines"));
    }
    // l3 revises l2 from l2's last day: March shows one upsell, no double count (NOTES.md).
    let v = movements_json(
        &dir,
        &[
            "--from",
            "2024-03",
            "--to",
            "2024-03",
            "--encoding",
            "windows-1252",
        ],
    );
    assert_eq!(v["months"][0]["upsell"], "100.00");
    assert_eq!(v["months"][0]["mrr_end"], "1534.30");
}

#[test]
fn an_unknown_encoding_is_a_usage_error() {
    expansa()
        .args(["movements", "--data"])
        .arg(fixture("windows-1252"))
        .args([
            "--from",
            "2024-01",
            "--to",
            "2024-02",
            "--encoding",
            "ebcdic",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "--encoding ebcdic: unknown or unsupported text encoding",
        ));
}

#[test]
fn import_decodes_before_the_store_keeps_utf8() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", tmp.path().join("s.db").display());
    let data = fixture("windows-1252");
    let import = |args: &[&str]| {
        expansa()
            .args(["import", "--data"])
            .arg(&data)
            .args(["--db", &db])
            .args(args)
            .output()
            .unwrap()
    };
    let refused = import(&[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains(WINDOWS_1252));
    let out = import(&["--encoding", "windows-1252"]);
    assert!(out.status.success(), "{out:?}");
    // Read back from the store (UTF-8 now), with or without the flag.
    for args in [&[][..], &["--encoding", "windows-1252"][..]] {
        let out = expansa()
            .args([
                "movements",
                "--db",
                &db,
                "--from",
                "2024-03",
                "--to",
                "2024-03",
            ])
            .args(["--format", "json"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["months"][0]["mrr_end"], "1534.30");
    }
    let exported = tmp.path().join("out");
    let out = expansa()
        .args(["export", "--db", &db, "--out"])
        .arg(&exported)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let customers = std::fs::read_to_string(exported.join("customers.csv")).unwrap();
    assert!(customers.contains("Padaria São José"), "{customers}");
    assert!(customers.contains("Belém"), "{customers}");
    // The same rows imported again change nothing.
    let again = import(&["--encoding", "windows-1252"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("no changes"),
        "{again:?}"
    );
}

#[test]
fn every_problem_of_a_row_in_one_run_and_none_that_follows_from_another() {
    let dir = book(&[
        (
            "customers.csv",
            b"id,name,registered_on\nc1,Um,2024-02-30\nc2,Dois,\n,,\n",
        ),
        (
            "subscriptions.csv",
            b"id,customer_id,product_id,unit_price,start_date,end_date,revises\n\
              a,c1,p,10,2024-01-01,,\n\
              b,c1,p,abc,2024-02-01,,nope\n\
              c,c1,p,10,2024-03-01,,b\n\
              d,c1,p,10,2023-12-01,,a\n\
              e,c2,p,10,2024-01-01,,f\n\
              f,c2,p,10,2024-01-01,,e\n\
              ,,,,,,\n\
              g,c2,p,10,2024-05-01,,,,\n",
        ),
    ]);
    assert_eq!(
        check_problems(dir.path(), &[]),
        [
            "subscriptions.csv:3: revises: nope: names an unknown line",
            "subscriptions.csv:3: unit_price: abc: not a decimal number (like 1234.56)",
            "subscriptions.csv:5: revises: a: revises a, which starts 2024-01-01, after this line",
            "subscriptions.csv:6: revises: f: a revises cycle: e -> f -> e",
            "customers.csv:2: registered_on: 2024-02-30: not a date (expected YYYY-MM-DD, a real day)",
        ]
    );
}

#[test]
fn one_problem_when_every_line_is_in_another_currency() {
    let dir = book(&[(
        "subscriptions.csv",
        b"id,customer_id,product_id,unit_price,currency,start_date\n\
          a,c1,p,10,USD,2024-01-01\n\
          b,c2,p,20,USD,2024-02-01\n",
    )]);
    assert_eq!(
        check_problems(dir.path(), &[]),
        [
            "subscriptions.csv:2: currency: USD: every line is in USD but the reporting currency \
          is BRL (the default) and fx_rates.csv has no USD rate: pass --currency USD, or add \
          USD rates"
        ]
    );
    let v = movements_json(
        dir.path(),
        &["--from", "2024-02", "--to", "2024-02", "--currency", "USD"],
    );
    assert_eq!(v["months"][0]["mrr_end"], "30.00");
    // Rates relative to BRL read with --currency USD: refused, not silently misread.
    std::fs::write(
        dir.path().join("fx_rates.csv"),
        "month,currency,rate\n2024-01,USD,5.10\n",
    )
    .unwrap();
    assert_eq!(
        check_problems(dir.path(), &["--currency", "USD"]),
        [
            "fx_rates.csv:2: rate: 5.10: a rate for the reporting currency USD must be 1: these \
          rates look relative to another currency (give that one with --currency)"
        ]
    );
}
