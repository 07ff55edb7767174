//! A workbook is a book (`--data planilha.xlsx`): the same report as the CSV book it holds,
//! from the committed fixtures and from a workbook that a real spreadsheet program, LibreOffice
//! Calc, writes from this test's own pt-BR CSV.

mod common;

use common::{expansa, movements_json};
use expansa_import::{read_book, ImportOptions, NoProgress};
use expansa_ledger::Book;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/workbook")
}

const RANGE: [&str; 4] = ["--from", "2024-01", "--to", "2024-12"];

#[test]
fn movements_of_a_workbook_are_those_of_its_csv_book() {
    let csv = movements_json(&fixtures().join("book"), &RANGE);
    assert_eq!(csv["months"].as_array().map(Vec::len), Some(12));
    // As testdata/workbook/NOTES.md works it out.
    assert_eq!(csv["months"][11]["mrr_end"], "808.69");
    assert_eq!(csv["months"][6]["downsell"], "-89.91");
    for name in ["planilha.xlsx", "planilha.ods"] {
        let path = fixtures().join(name);
        assert_eq!(movements_json(&path, &RANGE), csv, "{name}");
        expansa()
            .args(["check", "--data"])
            .arg(&path)
            .assert()
            .success();
    }
    // Imported into a store, the workbook is the same book.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("w.db").display());
    expansa()
        .args(["import", "--db", &db, "--data"])
        .arg(fixtures().join("planilha.xlsx"))
        .assert()
        .success();
    let out = expansa()
        .args(["movements", "--db", &db])
        .args(RANGE)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stored, csv);
}

#[test]
fn a_bad_workbook_is_refused_naming_sheet_row_and_column() {
    let path = fixtures().join("ruim.xlsx");
    let out = expansa()
        .args(["check", "--data"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let at = format!("{}[assinaturas]:3: unit_price: abc: ", path.display());
    assert!(err.contains(&at), "{err}");
    assert!(err.contains("[clientes]:3: Nome: #N/A: cell B3"), "{err}");
}

/// The test's book, as a Brazilian spreadsheet user keeps it: `;`-separated, decimal commas
/// and thousands dots, days as dd/mm/aaaa, pt-BR headers with accents.
const PT_BR_CSV: &str = "\
id;Cliente;Contrato;Produto;Quantidade;Valor unitário;Desconto;Moeda;Meses;Início;Término;Vendido em;Revisa
s1;c1;k1;p1;1;100,5;;BRL;1;01/01/2024;31/03/2024;15/12/2023;
s2;c1;k1;p2;2;250;;BRL;1;01/04/2024;;20/03/2024;s1
s3;c2;k2;p1;1;99,9;10;BRL;1;15/02/2024;30/06/2024;;
s4;c3;k3;p2;3;1.234,56;;BRL;12;01/03/2024;;;
s5;c3;k3;p3;1;49,9;2,5;BRL;1;01/05/2024;30/09/2024;;
s6;c2;k2;p3;0,5;0,1;;BRL;1;01/07/2024;;;
s7;c4;k4;p1;7;0,07;33,3;BRL;3;29/02/2024;28/02/2025;;
";

/// The same book in the interchange format.
const INTERCHANGE_CSV: &str = "\
id,customer_id,contract_id,product_id,quantity,unit_price,discount_pct,currency,billing_period_months,start_date,end_date,sold_on,revises
s1,c1,k1,p1,1,100.5,,BRL,1,2024-01-01,2024-03-31,2023-12-15,
s2,c1,k1,p2,2,250,,BRL,1,2024-04-01,,2024-03-20,s1
s3,c2,k2,p1,1,99.9,10,BRL,1,2024-02-15,2024-06-30,,
s4,c3,k3,p2,3,1234.56,,BRL,12,2024-03-01,,,
s5,c3,k3,p3,1,49.9,2.5,BRL,1,2024-05-01,2024-09-30,,
s6,c2,k2,p3,0.5,0.1,,BRL,1,2024-07-01,,,
s7,c4,k4,p1,7,0.07,33.3,BRL,3,2024-02-29,2025-02-28,,
";

/// LibreOffice's CSV import options (the "CSV Filter Options" of its help,
/// https://help.libreoffice.org/latest/en-US/text/shared/guide/csv_params.html): field
/// separator 59 (`;`), text delimiter 34 (`"`), character set 76 (UTF-8), start at line 1;
/// column formats: columns 1 to 4 and 13 (ids) 2 = text, 10 to 12 (days) 4 = DD/MM/YY, the
/// others standard; language 1046 (Portuguese, Brazil: decimal comma, thousands dot); quoted
/// fields not as text; detect special numbers.
const CSV_FILTER: &str = "Text - txt - csv (StarCalc):59,34,76,1,\
                          1/2/2/2/3/2/4/2/10/4/11/4/12/4/13/2,1046,false,true";

/// Where LibreOffice is, if it is installed.
fn soffice() -> Option<PathBuf> {
    ["soffice", "libreoffice"].iter().find_map(|name| {
        let ok = Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| PathBuf::from(name))
    })
}

/// Everything that makes a book's report: its lines, with their MRR, and the book's MRR.
fn lines(b: &Book) -> String {
    let l = &b.lines;
    let mut s = String::new();
    for i in 0..l.len() {
        s += &format!(
            "{} {:?} {:?} mrr {}\n",
            l.ids.get(i as u32),
            l.contract_id(i as u32),
            l.items[i],
            l.items[i].mrr()
        );
    }
    let total: expansa_ledger::Money = (0..l.len()).map(|i| l.items[i].mrr()).sum();
    s + &format!("book mrr {total}\n")
}

#[test]
fn a_workbook_written_by_libreoffice_from_a_pt_br_csv_is_the_csv_book() {
    let Some(soffice) = soffice() else {
        eprintln!(
            "\n*** SKIPPED a_workbook_written_by_libreoffice_from_a_pt_br_csv_is_the_csv_book: \
             LibreOffice (soffice) is not installed; scripts/test.sh installs it as root \
             (apt-get install libreoffice-calc-nogui) ***\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("book");
    std::fs::create_dir(&book).unwrap();
    std::fs::write(book.join("subscriptions.csv"), INTERCHANGE_CSV).unwrap();
    // Named so: its one sheet is `assinaturas`.
    let source = dir.path().join("assinaturas.csv");
    std::fs::write(&source, PT_BR_CSV).unwrap();
    let profile = dir.path().join("profile");
    for format in ["xlsx", "ods"] {
        let out = Command::new(&soffice)
            // A profile of its own: runs in parallel never share one.
            .arg(format!(
                "-env:UserInstallation=file://{}",
                profile.display()
            ))
            .arg("--headless")
            .arg(format!("--infilter={CSV_FILTER}"))
            .args(["--convert-to", format, "--outdir"])
            .arg(dir.path())
            .arg(&source)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "soffice --convert-to {format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let options = ImportOptions::default();
    let expected = read_book(&book, &options, &NoProgress).unwrap_or_else(|e| panic!("{:?}", e.0));
    let report = movements_json(&book, &RANGE);
    for format in ["xlsx", "ods"] {
        let workbook = dir.path().join(format!("assinaturas.{format}"));
        // Real cells: numbers and dates, not the CSV's text.
        let sheet = expansa_import::workbook::Workbook::open(&workbook)
            .unwrap()
            .sheet_csv("assinaturas")
            .unwrap();
        let text = String::from_utf8(sheet).unwrap();
        assert!(
            text.contains("s4,c3,k3,p2,3,1234.56,,BRL,12,2024-03-01,,,"),
            "{text}"
        );
        let got = read_book(&workbook, &options, &NoProgress)
            .unwrap_or_else(|e| panic!("{format}: {:?}", e.0));
        assert_eq!(lines(&got), lines(&expected), "{format}");
        assert_eq!(movements_json(&workbook, &RANGE), report, "{format}");
    }
}
