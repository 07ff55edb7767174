//! The amendment PDF read back with `pdftotext` (Debian's poppler-utils): the worked example K1
//! of docs/contracts.md (+1 SEAT from 2024-01-23: 398.45 x 1179/1460 = 321.76), in both
//! languages, with the vendor, the parties, the lines before and after and the total.

use expansa_contracts::{contract, quote_amend, AmendRequest, Change, Precision};
use expansa_documents::{amendment_pdf, Amendment};
use expansa_import::{read_book, ImportOptions, NoProgress};
use expansa_ledger::{Decimal, Locale};
use std::path::Path;

/// The text of `pdf`, as pdftotext lays it out; `None` when pdftotext is missing (a failure
/// under CI).
fn text_of(pdf: &[u8]) -> Option<String> {
    let dir = tempfile_dir();
    let file = dir.join("a.pdf");
    std::fs::write(&file, pdf).unwrap();
    let out = match std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(&file)
        .arg("-")
        .output()
    {
        Ok(out) => out,
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have pdftotext (scripts/test.sh installs poppler-utils)"
            );
            eprintln!("skipped: pdftotext is not installed");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Some(String::from_utf8(out.stdout).unwrap())
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "expansa-documents-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_amendment_reads_back_with_its_figures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/contracts");
    let book = read_book(&root, &ImportOptions::default(), &NoProgress).unwrap();
    let effective = "2024-01-23".parse().unwrap();
    let request = AmendRequest {
        contract: "K1".into(),
        effective,
        changes: vec![Change::Add("SEAT".into(), Decimal::ONE)],
        precision: Precision::MonthDay,
    };
    let quote = quote_amend(&book, &request).unwrap();
    let before = contract(&book, "K1", effective).unwrap();
    let name = |p: &str| {
        if p == "SEAT" {
            "Seat ção".to_string()
        } else {
            p.to_string()
        }
    };
    for (locale, total, title) in [
        (Locale::PtBr, "R$ 321,76", "Aditivo de contrato K1"),
        (Locale::En, "R$321.76", "Contract amendment K1"),
    ] {
        let pdf = amendment_pdf(&Amendment {
            vendor: "Expansa Software Ltda.",
            customer_id: "c1",
            customer_name: "Alfa Contabilidade",
            reference: "am_test",
            issued: "2024-01-23T10:00:00.000000Z",
            before: &before,
            quote: &quote,
            product_name: &name,
            locale,
        })
        .unwrap();
        assert!(pdf.starts_with(b"%PDF-"), "a PDF");
        let Some(text) = text_of(&pdf) else { return };
        for shown in [
            title,
            "Expansa Software Ltda.",
            "Alfa Contabilidade (c1)",
            "am_test",
            "2024-01-23 – 2024-11-12",
            "Seat ção",
            "0.8075342466",
            total,
        ] {
            assert!(
                text.contains(shown),
                "{locale:?}: {shown} is not in\n{text}"
            );
        }
        // Before 5 seats, after 6; the total per currency once.
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("Seat ção")).collect();
        assert!(
            lines[0].contains(" 5 ") && lines[1].contains(" 6 "),
            "{lines:?}"
        );
        assert_eq!(
            text.matches(total).count(),
            3,
            "unit, line and currency total: {text}"
        );
    }
}
