//! A workbook is a book: the fixtures of `testdata/workbook` (written by LibreOffice, see its
//! NOTES.md) read as the CSV book beside them, one sheet or several, and bad cells named by
//! workbook, sheet, row and column. Also the pt-BR header aliases, which every book accepts.

use expansa_import::schema::FILES;
use expansa_import::workbook::{is_workbook, Workbook, WorkbookBook};
use expansa_import::{
    book_at, read_book, read_book_from, read_rows_in, BookSource, ImportOptions, InMemory,
    NoProgress, TextEncoding,
};
use expansa_ledger::Book;
use std::fmt::Write;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/workbook")
}

/// What a book holds, as text: two books are the same book when these are equal.
fn dump(b: &Book) -> String {
    let mut s = String::new();
    let c = &b.customers;
    writeln!(
        s,
        "currency {:?}, customers.csv {}",
        b.currency, c.from_file
    )
    .unwrap();
    for i in 0..c.len() {
        writeln!(
            s,
            "customer {:?} {:?} {:?} {:?} {:?} {:?}",
            c.ids.get(i as u32),
            c.registered_on.get(i),
            c.name.get_opt(i),
            c.segment.get_opt(i),
            c.country.get_opt(i),
            c.channel.get_opt(i)
        )
        .unwrap();
    }
    let p = &b.products;
    for i in 0..p.len() {
        let item = &p.items[i];
        writeln!(
            s,
            "product {:?} family {:?} {item:?}",
            p.ids.get(i as u32),
            p.families.get(item.family)
        )
        .unwrap();
    }
    let l = &b.lines;
    for i in 0..l.len() {
        writeln!(
            s,
            "line {:?} contract {:?} sold {:?} {:?} mrr {}",
            l.ids.get(i as u32),
            l.contract_id(i as u32),
            l.sold_on(i as u32),
            l.items[i],
            l.items[i].mrr()
        )
        .unwrap();
    }
    writeln!(
        s,
        "book mrr {}",
        (0..l.len())
            .map(|i| l.items[i].mrr())
            .sum::<expansa_ledger::Money>()
    )
    .unwrap();
    writeln!(s, "{:?}", b.contracts).unwrap();
    s
}

/// Every file's rows as the store keeps them (values only: lines are rows of the sheet).
fn rows(source: &dyn BookSource) -> Vec<(String, Vec<Vec<Option<String>>>)> {
    FILES
        .iter()
        .filter_map(|schema| {
            let rows = read_rows_in(source, schema, TextEncoding::UTF_8)
                .unwrap_or_else(|e| panic!("{}: {:?}", schema.file, e.0))?;
            Some((
                schema.file.to_string(),
                rows.into_iter().map(|r| r.values).collect(),
            ))
        })
        .collect()
}

fn read(path: &Path) -> Book {
    read_book(path, &ImportOptions::default(), &NoProgress)
        .unwrap_or_else(|e| panic!("{}: {:?}", path.display(), e.0))
}

fn problems(path: &Path) -> Vec<String> {
    match read_book(path, &ImportOptions::default(), &NoProgress) {
        Ok(_) => panic!("{} read as a book", path.display()),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_workbook_of_several_sheets_is_the_book_of_its_csv_files() {
    let csv = fixtures().join("book");
    let expected = dump(&read(&csv));
    assert!(expected.contains("line \"s6\""), "{expected}");
    for name in ["planilha.xlsx", "planilha.ods"] {
        let path = fixtures().join(name);
        assert!(is_workbook(&path));
        assert_eq!(dump(&read(&path)), expected, "{name}");
        assert_eq!(rows(&book_at(&path)), rows(&book_at(&csv)), "{name}");
    }
}

#[test]
fn a_workbook_of_one_sheet_holds_the_subscriptions() {
    let subs = std::fs::read(fixtures().join("book/subscriptions.csv")).unwrap();
    let files = [("subscriptions.csv", subs.as_slice())];
    let expected =
        read_book_from(&InMemory(&files), &ImportOptions::default(), &NoProgress).unwrap();
    let path = fixtures().join("uma-aba.xlsx");
    assert_eq!(dump(&read(&path)), dump(&expected));
    let w = Workbook::open(&path).unwrap();
    assert_eq!(w.sheet_names(), ["Planilha1"]);
    // The table starts on row 3; a note over two lines does not move the rows after it.
    let sheet = w.sheet("Planilha1").unwrap();
    assert_eq!(sheet.first_row, 3);
    let text = String::from_utf8(sheet.csv.clone()).unwrap();
    let line_of = |id: &str| 1 + text.split('\n').position(|l| l.starts_with(id)).unwrap() as u64;
    assert_eq!(sheet.row(line_of("s3,")), 6);
    assert_eq!(sheet.row(line_of("s4,")), 8);
    assert_eq!(
        WorkbookBook::open(&path).sheet_of("subscriptions.csv"),
        Some("Planilha1")
    );
}

#[test]
fn bad_cells_are_named_by_workbook_sheet_row_and_column() {
    let path = fixtures().join("ruim.xlsx");
    let at = |sheet: &str| format!("{}[{sheet}]", path.display());
    let found = problems(&path);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert_eq!(
        found[0],
        format!(
            "{}:3: unit_price: abc: not a decimal number (like 1234.56)",
            at("assinaturas")
        )
    );
    // Row 5, past a cell of two lines on row 4.
    assert!(
        found[1].starts_with(&format!(
            "{}:5: start_date: 01/02/2024: ",
            at("assinaturas")
        )),
        "{found:#?}"
    );
    assert!(
        found[1].contains("format the spreadsheet cell as a date")
            && found[1].contains("expansa convert --map"),
        "{}",
        found[1]
    );
    assert_eq!(
        found[2],
        format!(
            "{}:3: Nome: #N/A: cell B3 holds the spreadsheet error #N/A, not a value: fix its \
             formula or clear the cell",
            at("clientes")
        )
    );
}

#[test]
fn a_workbook_without_subscriptions_says_which_sheets_it_has() {
    let path = fixtures().join("so-clientes.xlsx");
    let found = problems(&path);
    assert_eq!(
        found,
        [format!(
            "{}:0: file: : no sheet of the workbook holds subscriptions.csv, which a book needs: \
             name one subscriptions or assinaturas or assinatura or linhas (its sheets are: \
             clientes, Notas)",
            path.display()
        )]
    );
}

#[test]
fn a_sheet_too_large_is_refused_before_it_is_laid_out() {
    let path = fixtures().join("longe.xlsx");
    let found = problems(&path);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with(&format!(
            "{}[assinaturas]:0: sheet: : its used range A1:XFD1048576",
            path.display()
        )),
        "{}",
        found[0]
    );
}

#[test]
fn what_is_not_a_workbook_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake.xlsx");
    std::fs::write(&fake, "id,customer_id\n").unwrap();
    assert!(problems(&fake)[0].contains("cannot be read as an .xlsx workbook"));
    let old = dir.path().join("old.xls");
    std::fs::write(&old, "x").unwrap();
    assert!(problems(&old)[0].contains("save it as .xlsx"));
    let absent = dir.path().join("absent.ods");
    assert!(problems(&absent)[0].ends_with("no such file"));
    // A folder named like a workbook is a folder.
    let folder = dir.path().join("book.xlsx");
    std::fs::create_dir(&folder).unwrap();
    assert!(!is_workbook(&folder));
    #[cfg(unix)]
    {
        let fifo = dir.path().join("pipe.xlsx");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let said = problems(&fifo);
        assert!(
            said[0].contains("is not a regular file (a named pipe)"),
            "{said:?}"
        );
    }
}

#[test]
fn pt_br_headers_are_aliases_in_csv_books_too() {
    let english = std::fs::read(fixtures().join("book/subscriptions.csv")).unwrap();
    let english = [("subscriptions.csv", english.as_slice())];
    let pt: &[u8] = "id;Cliente;contrato;PRODUTO;qtd;Valor Unitário;desconto;moeda;meses;início;\
                     término;vendido_em;revisa\n\
                     s1;c1;k1;p1;1;100,5;;BRL;1;2024-01-01;2024-03-31;2023-12-15;\n\
                     s2;c1;k1;p2;2;250;;BRL;1;2024-04-01;;2024-03-20;s1\n\
                     s3;c2;k2;p1;1;99,9;10;BRL;1;2024-02-15;2024-06-30;;\n\
                     s4;c3;k3;p2;3;1.234,56;;BRL;12;2024-03-01;;;\n\
                     s5;c3;k3;p3;1;49,9;2,5;BRL;1;2024-05-01;2024-09-30;;\n\
                     s6;c2;k2;p3;0,5;0,1;;BRL;1;2024-07-01;;;\n"
        .as_bytes();
    let pt = [("subscriptions.csv", pt)];
    let options = ImportOptions::default();
    let a = read_book_from(&InMemory(&english), &options, &NoProgress).unwrap();
    let b = read_book_from(&InMemory(&pt), &options, &NoProgress).unwrap();
    assert_eq!(dump(&a), dump(&b));

    // Two names of one column are a problem.
    let twice: &[u8] = b"id,cliente,customer_id,product_id,unit_price,start_date\n";
    let files = [("subscriptions.csv", twice)];
    let Err(e) = read_book_from(&InMemory(&files), &options, &NoProgress) else {
        panic!("read");
    };
    assert_eq!(
        e.0[0].to_string(),
        "subscriptions.csv:1: customer_id: customer_id: column appears twice in the header: \
         \"cliente\" and \"customer_id\" both name customer_id (pt-BR names are aliases of the \
         format's)"
    );
}
