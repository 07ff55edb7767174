//! `expansa convert` and `expansa import --from` end to end: flags, the report, the book
//! written whole or not at all, and `convert` then `check` then `movements`.

mod common;

use common::expansa;
use std::path::Path;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn flags_are_checked_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("book");
    let cases: [(&[&str], &str); 5] = [
        (
            &["convert", "--from", "strype", "--input", "x"],
            "error: --from strype: unknown source (one of stripe, recurly, zuora, chargebee, baremetrics, chartmogul, conexa, asaas, iugu, vindi)",
        ),
        (
            &["convert", "--input", "x"],
            "error: give the source: --from KIND or --map mapping.toml",
        ),
        (
            &["convert", "--from", "stripe"],
            "error: give the export to convert: --input FOLDER_OR_FILE",
        ),
        (
            &["convert", "--from", "stripe", "--input", "x", "--timezone", "Mars/Olympus"],
            "error: --timezone Mars/Olympus: unknown time zone (give an IANA name such as America/Sao_Paulo or UTC)",
        ),
        (
            &["convert", "--map", "/nonexistent/mapping.toml", "--input", "x"],
            "error: --map /nonexistent/mapping.toml: cannot be read",
        ),
    ];
    for (args, message) in cases {
        let o = expansa()
            .args(args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).starts_with(message), "{args:?}: {}", stderr(&o));
    }
    assert!(!out.exists());
    // import: --input needs --from, and --data is a book, not an export.
    let o = expansa()
        .args(["import", "--input", "x", "--db"])
        .arg(format!("sqlite:{}", dir.path().join("s.db").display()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--input is an export to convert"),
        "{}",
        stderr(&o)
    );
    let o = expansa()
        .args(["import", "--from", "stripe", "--input", "x", "--data", "y"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("give one or the other"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_folder_that_holds_something_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("book");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let o = expansa()
        .args(["convert", "--from", "stripe", "--input"])
        .arg(dir.path())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("exists and is not an empty folder: give a new folder, or --force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
}

#[test]
fn an_input_that_is_not_there_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("book");
    let o = expansa()
        .args(["convert", "--from", "stripe", "--input"])
        .arg(dir.path().join("missing"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text = stderr(&o);
    assert!(text.contains("missing:0: file: : is not there"), "{text}");
    assert!(
        text.ends_with("error: the conversion found 1 problem(s); nothing was written\n"),
        "{text}"
    );
    assert!(!out.exists());
    // No temporary folder is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Runs `convert` with `args`, which must succeed; returns the report's JSON.
pub fn convert_json(args: &[&str], input: &Path, out: &Path) -> serde_json::Value {
    let o = expansa()
        .arg("convert")
        .args(args)
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn fixtures(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sources/tests/fixtures")
        .join(path)
}

/// `(--from, fixture, extra flags, --mrr-at, MRR by hand (NOTES.md), currency)`.
type Case<'a> = (&'a str, &'a str, &'a [&'a str], &'a str, &'a str, &'a str);

/// Every source, from its fixture, end to end: `convert`, then `check` on the book, then
/// `movements`: the report's MRR at the month end is the one worked out by hand in the
/// fixture's NOTES.md, and the movement report ends that month at the same MRR (two code
/// paths, one figure).
#[test]
fn every_source_converts_checks_and_reports() {
    // (--from, fixture, extra flags, --mrr-at, MRR by hand (NOTES.md), currency)
    let cases: &[Case] = &[
        (
            "stripe",
            "stripe/api",
            &["--timezone", "America/Sao_Paulo", "--fx-rates"],
            "2024-06",
            "381.00",
            "USD",
        ),
        ("recurly", "recurly/book", &[], "2024-06", "680.00", "USD"),
        ("zuora", "zuora/book", &[], "2024-06", "350.00", "USD"),
        ("conexa", "conexa", &[], "2024-12", "2345.00", "BRL"),
        (
            "baremetrics",
            "baremetrics",
            &[],
            "2024-03",
            "350.00",
            "USD",
        ),
        ("chartmogul", "chartmogul", &[], "2024-03", "350.00", "USD"),
        ("chargebee", "chargebee", &[], "2024-03", "207.00", "USD"),
        ("asaas", "asaas", &[], "2024-12", "499.90", "BRL"),
        ("iugu", "iugu", &[], "2024-05", "288.00", "BRL"),
        ("vindi", "vindi", &[], "2024-06", "1270.00", "BRL"),
    ];
    for (from, fixture, flags, month, mrr, currency) in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("book");
        // The conversion into `book` (with `--parts N` given), its JSON report.
        let convert = |book: &std::path::Path, parts: &[&str]| {
            let mut cmd = expansa();
            cmd.args(["convert", "--from", from, "--currency", currency])
                .args(["--mrr-at", month])
                .args(parts)
                .args(*flags);
            if flags.contains(&"--fx-rates") {
                cmd.arg(fixtures("stripe/fx_rates.csv"));
            }
            let o = cmd
                .arg("--input")
                .arg(fixtures(fixture))
                .arg("--out")
                .arg(book)
                .args(["--format", "json"])
                .output()
                .unwrap();
            assert!(o.status.success(), "{from} {parts:?}: {}", stderr(&o));
            serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
        };
        let report = convert(&out, &[]);
        assert_eq!(report["mrr"], *mrr, "{from}: {report}");
        assert_eq!(report["source"], *from);
        // In parts (the export and the written book's check), the same report.
        for parts in ["2", "5"] {
            let again = dir.path().join(format!("book-{parts}"));
            let mut in_parts = convert(&again, &["--parts", parts]);
            in_parts["book"] = report["book"].clone();
            assert_eq!(in_parts, report, "{from} in {parts} parts");
        }
        assert!(out.join("conversion.csv").is_file(), "{from}");
        let o = expansa()
            .args(["check", "--currency", currency, "--data"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{from}: check: {}", stderr(&o));
        let months = common::command_json(
            "movements",
            &out,
            &["--currency", currency, "--from", month, "--to", month],
        );
        assert_eq!(months["months"][0]["mrr_end"], *mrr, "{from}: {months}");
    }
}

/// `import --from` converts and loads the book as one event; a second import of the same
/// export changes nothing; a conversion with problems changes nothing in the store.
#[test]
fn import_from_a_source_into_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("s.db").display());
    let import = |fixture: &str| {
        expansa()
            .args(["import", "--from", "conexa", "--db", &db, "--input"])
            .arg(fixtures(fixture))
            .output()
            .unwrap()
    };
    let o = import("conexa");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("conexa convertido\nlinhas da origem: 16 mapeadas, 4 ignoradas\n"),
        "{text}"
    );
    assert!(text.contains("import: recorded as event 1"), "{text}");
    let o = import("conexa");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("import: no changes (the store already holds these rows)"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // A folder that is not a Conexa export: refused, and the store keeps one event.
    let o = import("stripe/api");
    assert_eq!(o.status.code(), Some(1));
    let events = expansa()
        .args(["events", "--format", "json", "--db", &db])
        .output()
        .unwrap();
    let events: serde_json::Value = serde_json::from_slice(&events.stdout).unwrap();
    assert_eq!(events.as_array().map(Vec::len), Some(1), "{events}");
    // The store's book is the converted one: its MRR at 2024-12 is the fixture's.
    let o = expansa()
        .args([
            "movements",
            "--db",
            &db,
            "--from",
            "2024-12",
            "--to",
            "2024-12",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["months"][0]["mrr_end"], "2345.00");
}

/// `--out` never lands on what the user holds: a folder holding the export or the mapping,
/// the current folder, a symbolic link, a folder of other files (even with --force); --force
/// replaces a book. A named pipe as --map or --fx-rates is refused, not waited on.
#[test]
fn the_book_is_never_written_over_the_users_files() {
    let dir = tempfile::tempdir().unwrap();
    let same = dir.path().join("same");
    std::fs::create_dir(&same).unwrap();
    std::fs::copy(
        fixtures("baremetrics/subscriptions.csv"),
        same.join("subscriptions.csv"),
    )
    .unwrap();
    std::fs::write(same.join("m.toml"), "extends = \"baremetrics\"\n").unwrap();
    let run = |args: &[&str], out: &Path| {
        expansa()
            .args(["convert", "--currency", "USD", "--mrr-at", "2024-03"])
            .args(args)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let input = same.join("subscriptions.csv");
    let map = same.join("m.toml");
    let o = run(
        &[
            "--map",
            map.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--force",
        ],
        &same,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("which the conversion reads: give another folder"),
        "{}",
        stderr(&o)
    );
    assert!(same.join("m.toml").is_file() && input.is_file());
    // A folder of other files is not a book: --force does not replace it.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let o = run(
        &[
            "--from",
            "baremetrics",
            "--input",
            input.to_str().unwrap(),
            "--force",
        ],
        &other,
    );
    assert!(
        stderr(&o).contains("holds files that are not a book's"),
        "{}",
        stderr(&o)
    );
    assert!(other.join("notes.txt").is_file());
    // A book is replaced with --force.
    let book = dir.path().join("book");
    let o = run(
        &["--from", "baremetrics", "--input", input.to_str().unwrap()],
        &book,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(
        &[
            "--from",
            "baremetrics",
            "--input",
            input.to_str().unwrap(),
            "--force",
        ],
        &book,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // A book beside other files (notes, a repository) is not replaced either.
    std::fs::write(book.join("notes.txt"), "mine").unwrap();
    let o = run(
        &[
            "--from",
            "baremetrics",
            "--input",
            input.to_str().unwrap(),
            "--force",
        ],
        &book,
    );
    assert!(
        stderr(&o).contains("holds files that are not a book's"),
        "{}",
        stderr(&o)
    );
    assert!(book.join("notes.txt").is_file());
    std::fs::remove_file(book.join("notes.txt")).unwrap();
    // A Parquet book is a book: replaced whole with --force (no Parquet file is left to make
    // the folder a mixed one).
    let parquet = dir.path().join("parquet");
    let o = expansa()
        .args([
            "export",
            "--currency",
            "USD",
            "--format",
            "parquet",
            "--data",
        ])
        .arg(&book)
        .arg("--out")
        .arg(&parquet)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(
        &[
            "--from",
            "baremetrics",
            "--input",
            input.to_str().unwrap(),
            "--force",
        ],
        &parquet,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let left: Vec<String> = std::fs::read_dir(&parquet)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A symbolic link, the current folder.
    #[cfg(unix)]
    {
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&book, &link).unwrap();
        let o = run(
            &[
                "--from",
                "baremetrics",
                "--input",
                input.to_str().unwrap(),
                "--force",
            ],
            &link,
        );
        assert!(stderr(&o).contains("is a symbolic link"), "{}", stderr(&o));
    }
    let o = expansa()
        .current_dir(&book)
        .args([
            "convert",
            "--from",
            "baremetrics",
            "--currency",
            "USD",
            "--force",
            "--out",
            ".",
        ])
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains("is the current folder"),
        "{}",
        stderr(&o)
    );
    // A named pipe as --map or --fx-rates: refused at once.
    #[cfg(unix)]
    {
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for flag in ["--map", "--fx-rates"] {
            let mut cmd = expansa();
            cmd.args(["convert", "--input"])
                .arg(&input)
                .arg("--out")
                .arg(dir.path().join("x"));
            if flag == "--fx-rates" {
                cmd.args(["--from", "baremetrics"]);
            }
            let o = cmd
                .arg(flag)
                .arg(&fifo)
                .timeout(std::time::Duration::from_secs(20))
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
            assert!(
                stderr(&o).contains("is not a regular file"),
                "{flag}: {}",
                stderr(&o)
            );
        }
        // As the export itself: one problem, nothing waited on.
        let o = expansa()
            .args(["convert", "--from", "baremetrics", "--input"])
            .arg(&fifo)
            .arg("--out")
            .arg(dir.path().join("y"))
            .timeout(std::time::Duration::from_secs(20))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o)
                .contains(": file: : is not a regular file or a folder (a named pipe or a device)"),
            "{}",
            stderr(&o)
        );
    }
}

/// A value the converter reads but the book cannot keep (the importer's limit on a price's
/// digits) is told at the source row, not at the written book's line.
#[test]
fn a_value_the_book_cannot_keep_is_told_at_its_source_row() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("vendas.csv");
    std::fs::write(
        &export,
        "Cliente;Produto;Valor;Início\nc1;erp;1.234,56;2024-01-01\nc2;erp;12345678901234567890,5;2024-01-01\n",
    )
    .unwrap();
    let map = dir.path().join("m.toml");
    std::fs::write(&map, "extends = \"planilha\"\n").unwrap();
    let out = dir.path().join("book");
    // Whole, and with the written book checked in parts (the problem told at the same line).
    for parts in ["1", "2", "3", "5"] {
        let o = expansa()
            .args(["convert", "--parts", parts, "--map"])
            .arg(&map)
            .arg("--input")
            .arg(&export)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(
            stderr(&o),
            "vendas.csv:3: unit_price: 12345678901234567890.5: has more than 17 significant digits \
             (the book's subscriptions.csv:3, line c2/erp/2024-01-01)\n\
             error: the conversion found 1 problem(s); nothing was written\n",
            "{parts} parts"
        );
        assert!(!out.exists());
    }
}

/// With --skip-refused the refused rows are still told: listed in the report (and its JSON),
/// each as a problem; without it, the error says the flag exists.
#[test]
fn rows_left_out_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("book");
    let sample = fixtures("stripe/fivetran-sample");
    let o = expansa()
        .args([
            "convert",
            "--from",
            "stripe",
            "--currency",
            "USD",
            "--input",
        ])
        .arg(&sample)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).ends_with(
            "error: the conversion found 27 problem(s); nothing was written (--skip-refused \
             leaves the refused rows out and writes the rest)\n"
        ),
        "{}",
        stderr(&o)
    );
    let report = convert_json(
        &["--from", "stripe", "--currency", "USD", "--skip-refused"],
        &sample,
        &out,
    );
    let refused = report["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 27, "{report}");
    assert_eq!(report["rows"]["refused"], 27, "{report}");
    assert!(
        refused
            .iter()
            .all(|r| r.as_str().unwrap().contains("_data.csv:")),
        "{refused:?}"
    );
}

/// The report's table speaks the locale (codes stay codes); its CSV is the same in any.
#[test]
fn the_report_in_english_and_portuguese() {
    let dir = tempfile::tempdir().unwrap();
    let run = |locale: &str, format: &str| {
        let o = expansa()
            .args([
                "convert", "--from", "conexa", "--mrr-at", "2024-12", "--force",
            ])
            .args(["--locale", locale, "--format", format, "--input"])
            .arg(fixtures("conexa"))
            .arg("--out")
            .arg(dir.path().join("book"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let en = run("en", "table");
    assert!(en.contains("source rows: 16 mapped, 4 skipped\n"), "{en}");
    assert!(
        en.contains("MRR at 2024-12-31: R$2,345.00 (3 paying customers)\n"),
        "{en}"
    );
    let pt = run("pt-BR", "table");
    assert!(
        pt.contains("MRR em 2024-12-31: R$ 2.345,00 (3 clientes pagantes)\n"),
        "{pt}"
    );
    assert!(
        pt.contains("contracts.json        ignoradas  not_billable       1"),
        "{pt}"
    );
    assert_eq!(run("pt-BR", "csv"), run("en", "csv"));
}
