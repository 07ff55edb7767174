//! One CSV reader: the same bytes read by every path that reads a table give the same records,
//! headers and encodings, or the same problems.
//!
//! The paths: [`read_book_from`] from a folder (the CLI's `--data`, `check`, and `import`'s
//! validation) and from memory, [`read_rows_in`] (what `import` stores), and the store's rebuild
//! (the stored rows written back by [`write_rows`] and read again by [`read_book_from`]).

use expansa_import::schema::{Schema, CUSTOMERS, FILES, PRODUCTS, SUBSCRIPTIONS};
use expansa_import::{
    read_book_from, read_rows_in, write_rows, Folder, ImportOptions, InMemory, NoProgress, RawRow,
    TextEncoding,
};
use expansa_ledger::Book;
use proptest::prelude::*;
use std::fmt::Write;

/// Everything a book holds, as text: two books are the same book when these are equal.
/// Customer attributes are compared by name and only where a customer has a value (the store
/// keeps a row's non-empty extra values, so a column no customer fills is not kept).
fn dump(b: &Book) -> String {
    let mut s = String::new();
    let c = &b.customers;
    writeln!(
        s,
        "currency {:?}, customers.csv {}",
        b.currency, c.from_file
    )
    .unwrap();
    let mut attributes: Vec<_> = c.attributes.iter().collect();
    attributes.sort_by(|a, b| a.0.cmp(&b.0));
    for i in 0..c.len() {
        write!(
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
        for (name, column) in &attributes {
            if let Some(v) = column.get_opt(i) {
                write!(s, " {name:?}={v:?}").unwrap();
            }
        }
        s.push('\n');
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
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        b.contracts, b.contracted_prices, b.fx_rates, b.marketing_spend, b.usage, b.offers
    )
    .unwrap();
    s
}

/// The rows of a file written back as the store writes them (canonical columns, then the extra
/// ones in order of first appearance).
fn written(schema: &Schema, rows: &[RawRow]) -> Vec<u8> {
    let mut extra: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in rows {
        for (name, _) in &r.extra {
            if seen.insert(name) {
                extra.push(name.clone());
            }
        }
    }
    write_rows(
        schema,
        &extra,
        rows.iter()
            .map(|r| (r.values.as_slice(), r.extra.as_slice())),
    )
}

fn problems_of(e: &expansa_import::BookErrors) -> Vec<String> {
    e.0.iter().map(ToString::to_string).collect()
}

/// `read` on `files` written into a new folder.
fn in_folder<T>(files: &[(&str, Vec<u8>)], read: impl FnOnce(&std::path::Path) -> T) -> T {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "expansa-one-reader-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let out = read(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    out
}

/// Reads `files` on every path and requires them to agree.
fn agree(files: &[(&str, Vec<u8>)], encoding: TextEncoding) -> Result<(), TestCaseError> {
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let source = InMemory(&refs);
    let options = ImportOptions {
        encoding,
        ..ImportOptions::default()
    };
    let book = read_book_from(&source, &options, &NoProgress);
    // The CLI's `--data`: the same files in a folder.
    let from_folder = in_folder(files, |dir| {
        read_book_from(&Folder(dir), &options, &NoProgress)
    });
    match (&book, &from_folder) {
        (Ok(a), Ok(b)) => prop_assert_eq!(dump(a), dump(b)),
        (Err(a), Err(b)) => prop_assert_eq!(problems_of(a), problems_of(b)),
        _ => return Err(TestCaseError::fail("a folder and memory read differently")),
    }
    let mut rebuilt: Vec<(&str, Vec<u8>)> = Vec::new();
    for schema in FILES {
        let rows = read_rows_in(&source, &schema, encoding);
        match (&book, rows) {
            (_, Ok(None)) => {}
            (_, Ok(Some(rows))) => rebuilt.push((schema.file, written(&schema, &rows))),
            (Ok(_), Err(e)) => {
                return Err(TestCaseError::fail(format!(
                    "the book reads, but the store's reader refuses {}: {:?}",
                    schema.file,
                    problems_of(&e)
                )))
            }
            (Err(all), Err(e)) => {
                // What the store's reader finds wrong, the import finds, at the same line.
                let all = problems_of(all);
                for p in problems_of(&e) {
                    prop_assert!(
                        all.contains(&p) || all.len() >= expansa_import::MAX_LISTED_PROBLEMS,
                        "the store's reader says {p:?}; the import says {all:#?}"
                    );
                }
            }
        }
    }
    if let Ok(book) = &book {
        let refs: Vec<(&str, &[u8])> = rebuilt.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        let again = read_book_from(&InMemory(&refs), &ImportOptions::default(), &NoProgress);
        match again {
            Ok(again) => prop_assert_eq!(dump(book), dump(&again), "rebuilt: {:?}", rebuilt),
            Err(e) => {
                return Err(TestCaseError::fail(format!(
                    "the book reads, but not as the store rebuilds it: {:?}\n{rebuilt:?}",
                    problems_of(&e)
                )))
            }
        }
    }
    Ok(())
}

/// Picks from a stream of random numbers (shrinks well: fewer, smaller choices).
struct Pick<'a>(&'a [u16], usize);

impl Pick<'_> {
    fn any(&mut self, n: usize) -> usize {
        let v = self.0.get(self.1).copied().unwrap_or(0);
        self.1 += 1;
        v as usize % n
    }

    fn one<'b, T: ?Sized>(&mut self, from: &[&'b T]) -> &'b T {
        from[self.any(from.len())]
    }
}

const LINE_ENDS: [&[u8]; 3] = [b"\n", b"\r\n", b"\r"];

/// A value: as written, quoted, padded; when not `clean`, also quoted sloppily.
fn field(pick: &mut Pick, value: &[u8], sep: u8, clean: bool) -> Vec<u8> {
    let needs = value
        .iter()
        .any(|&b| b == sep || b == b'"' || b == b'\r' || b == b'\n');
    match pick.any(8) {
        0..=4 if !needs => value.to_vec(),
        6 if !needs || !clean => [b"  ", value, b" "].concat(),
        7 if !clean => value.to_vec(),
        _ => {
            let mut q = vec![b'"'];
            for &b in value {
                if b == b'"' {
                    q.push(b'"');
                }
                q.push(b);
            }
            q.push(b'"');
            q
        }
    }
}

/// Values a column may hold that a valid book may have, in a file separated by `sep`, on
/// row `row`; text that is not UTF-8 only when the book is read as Windows-1252.
fn good(pick: &mut Pick, file: &str, column: &str, sep: u8, row: usize, latin: bool) -> Vec<u8> {
    let comma = sep == b';';
    let text: &[u8] = match column {
        "id" if file == "customers.csv" => {
            return [&b"c1"[..], b"c2", b"c,3", b"c4", b"c5", b"c6"][row].to_vec()
        }
        "id" if file == "products.csv" => {
            return [&b"p1"[..], b"p2", b"p;3", b"p\"4", b"p5", b"p6"][row].to_vec()
        }
        "id" => {
            return match pick.any(4) {
                0 => format!("L {row}").into_bytes(),
                1 => format!("Lé{row}").into_bytes(),
                _ => format!("L{row}").into_bytes(),
            }
        }
        "customer_id" => pick.one(&[&b"c1"[..], b"c1", b"c2", b"c,3"]),
        "product_id" => pick.one(&[&b"p1"[..], b"p2", b"p;3", b"p\"4"]),
        "contract_id" => pick.one(&[&b""[..], b"K1"]),
        "quantity" if comma => pick.one(&[&b""[..], b"1", b"2,5", b"1.5"]),
        "quantity" => pick.one(&[&b""[..], b"1", b"2.5"]),
        "unit_price" | "list_price" if comma => {
            pick.one(&[&b"10"[..], b"10,5", b"1.234,56", b"0,5", b" 7 "])
        }
        "unit_price" | "list_price" => pick.one(&[&b"10"[..], b"10.5", b"1234.56", b"0.5"]),
        "discount_pct" => pick.one(&[&b""[..], b"5", if comma { b"12,5" } else { b"12.5" }]),
        "currency" => pick.one(&[&b""[..], b"BRL", b"brl"]),
        "billing_period_months" | "price_term_months" => pick.one(&[&b""[..], b"1", b"12", b"+3"]),
        // With billing_period_months on the same row, only "" keeps the book valid.
        "billing_interval" => pick.one(&[&b""[..], b"", b"week", b"Day", b"YEAR"]),
        "billing_interval_count" => pick.one(&[&b""[..], b"2", b"+3"]),
        "tier" => pick.one(&[&b""[..], b"1", b"-2", b"+3"]),
        "kind" => pick.one(&[&b""[..], b"plan", b"Addon"]),
        "start_date" => pick.one(&[&b"2024-01-01"[..], b"2023-12-31", b"2024-02-29"]),
        "end_date" => pick.one(&[&b""[..], b"", b"2025-01-01"]),
        "sold_on" | "registered_on" => pick.one(&[&b""[..], b"2023-06-30"]),
        "revises" => b"",
        "channel" => pick.one(&[&b""[..], b"web", b"ads"]),
        _ => {
            let v = pick.one(&[
                &b"Padaria"[..],
                b"S\xc3\xa3o Jo\xc3\xa3o",
                b"S\xe3o",
                b"a\"b",
                b"27\" tv",
                b"multi\nline",
                b"multi\r\nline",
                b"lone\rcr",
                b" x ",
                b"\xc2\xa0nb\xc2\xa0",
                b"",
                b"a,b;c",
            ]);
            if !latin && v == b"S\xe3o" {
                b"Sao"
            } else {
                v
            }
        }
    };
    text.to_vec()
}

/// Values a column may hold (good, bad, odd).
fn any_value(column: &str) -> &'static [&'static [u8]] {
    match column {
        "id" => &[
            b"L1",
            b"L2",
            b"L3",
            b"c1",
            b"c2",
            b"L 4",
            b"L\xe95",
            b"L\xc2\xa06",
        ],
        "customer_id" => &[b"c1", b"c2", b"C1", b"c\xe93", b"c,4", b"c;5"],
        "product_id" | "family" => &[b"p1", b"p2", b"p;3", b"p\"4"],
        "quantity" | "unit_price" | "list_price" => &[
            b"10",
            b"10.5",
            b"1.234,56",
            b"0,5",
            b"007",
            b"-1",
            b"abc",
            b"",
        ],
        "discount_pct" => &[b"", b"5", b"12,5", b"101"],
        "start_date" | "end_date" | "registered_on" | "sold_on" => &[
            b"2024-01-01",
            b"2024-02-29",
            b"2023-12-31",
            b"2024-13-01",
            b"0000-01-01",
            b"",
        ],
        "currency" => &[b"", b"BRL", b"brl", b"XXX"],
        "billing_period_months" | "tier" => &[b"", b"1", b"12", b"+3", b"0"],
        "billing_interval" => &[b"", b"week", b"Month", b"fortnight", b"1"],
        "billing_interval_count" => &[b"", b"1", b"+2", b"0", b"99999", b"x"],
        "revises" => &[b"", b"", b"L1", b"L2"],
        _ => &[
            b"Padaria",
            b"S\xc3\xa3o Jo\xc3\xa3o",
            b"S\xe3o",
            b"a\"b",
            b"27\" tv",
            b"multi\nline",
            b"multi\r\nline",
            b"lone\rcr",
            b" x ",
            b"\xc2\xa0nb\xc2\xa0",
            b"",
            b"x\x00y",
            b"\x81",
        ],
    }
}

/// A random file of `schema`: its columns in any order (some left out), extra columns, a
/// separator, line ends of any kind, a BOM, quoting of any kind, text that is not UTF-8. Half
/// the files hold only values a valid book may hold; the others anything, rows of the wrong
/// width and bytes that make no sense at all.
fn file(pick: &mut Pick, schema: &Schema, latin: bool) -> Vec<u8> {
    let clean = pick.any(2) == 0;
    let sep = *pick.one(&[&b',', &b';']);
    let mixed = pick.any(3) == 0;
    let fixed = LINE_ENDS[pick.any(3)];
    let end = |pick: &mut Pick| -> &'static [u8] {
        if mixed {
            LINE_ENDS[pick.any(3)]
        } else {
            fixed
        }
    };
    let mut columns: Vec<&str> = schema
        .columns
        .iter()
        .copied()
        .filter(|c| schema.required.contains(c) || pick.any(2) == 0)
        .collect();
    for i in (1..columns.len()).rev() {
        columns.swap(i, pick.any(i + 1));
    }
    for _ in 0..pick.any(3) {
        columns.push(pick.one(&[
            "notes",
            "Segmento Ñ",
            "attr,comma",
            " spaced ",
            "x\"q",
            "line\nbreak",
            "notes",
            if clean { "more" } else { "ID" },
            "",
        ]));
    }
    let mut out = Vec::new();
    if pick.any(4) == 0 {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            out.push(sep);
        }
        let name: &[u8] = match pick.any(12) {
            0 if (latin || !clean) && !schema.required.contains(c) => b"na\xefve",
            _ => c.as_bytes(),
        };
        out.extend(field(pick, name, sep, clean));
    }
    out.extend_from_slice(end(pick));
    let rows = if clean && schema.file == "customers.csv" {
        3 + pick.any(4)
    } else {
        pick.any(7)
    };
    for row in 0..rows {
        let width = match pick.any(10) {
            0 if !clean => columns.len().saturating_sub(1),
            1 if !clean => columns.len() + 1,
            _ => columns.len(),
        };
        for i in 0..width {
            if i > 0 {
                out.push(sep);
            }
            let column = columns.get(i).copied().unwrap_or("");
            let value = if clean {
                good(pick, schema.file, column, sep, row, latin)
            } else {
                pick.one(any_value(column)).to_vec()
            };
            let value = field(pick, &value, sep, clean);
            out.extend(value);
        }
        if !clean && pick.any(12) == 0 {
            let noise: &[u8] = pick.one(&[&b"\""[..], b"\r", b"\n", b"\xe9", b";", b",", b"\r\n"]);
            out.extend_from_slice(noise);
        }
        out.extend_from_slice(end(pick));
    }
    if pick.any(3) == 0 {
        while out.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            out.pop();
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// The same bytes read by every path: the same book (and the same rebuilt book), or the
    /// same problems.
    #[test]
    fn every_path_reads_the_same_records(
        choices in proptest::collection::vec(any::<u16>(), 0..400),
        encoding in proptest::sample::select(vec![TextEncoding::UTF_8, TextEncoding::WINDOWS_1252]),
    ) {
        let mut pick = Pick(&choices, 0);
        let latin = encoding == TextEncoding::WINDOWS_1252;
        let mut files = vec![("subscriptions.csv", file(&mut pick, &SUBSCRIPTIONS, latin))];
        if pick.any(2) == 0 {
            files.push(("customers.csv", file(&mut pick, &CUSTOMERS, latin)));
        }
        if pick.any(3) == 0 {
            files.push(("products.csv", file(&mut pick, &PRODUCTS, latin)));
        }
        agree(&files, encoding)?;
    }

    /// Raw bytes, not shaped like a table at all.
    #[test]
    fn every_path_reads_the_same_bytes(
        pieces in proptest::collection::vec(proptest::sample::select(vec![
            &b","[..], b";", b"\"", b"\n", b"\r\n", b"\r", b" ", b"\xe9", b"\x81", b"\xef\xbb\xbf",
            b"\x00", b"\x1f", b"id", b"customer_id", b"product_id", b"unit_price", b"start_date",
            b"c1", b"10", b"2024-01-01", b"L1",
        ]), 0..80),
    ) {
        let mut subs = b"id,customer_id,product_id,unit_price,start_date".to_vec();
        for p in &pieces {
            subs.extend_from_slice(p);
        }
        agree(&[("subscriptions.csv", subs.clone())], TextEncoding::UTF_8)?;
        agree(&[("subscriptions.csv", pieces.concat())], TextEncoding::WINDOWS_1252)?;
    }
}

fn rows_of(files: &[(&str, &[u8])], schema: &Schema) -> Vec<RawRow> {
    read_rows_in(&InMemory(files), schema, TextEncoding::UTF_8)
        .unwrap()
        .unwrap()
}

/// Excel's "CSV (Macintosh)" ends lines with a lone `\r`: read as lines, on every path.
#[test]
fn cr_only_line_ends_are_line_ends() {
    let subs: &[u8] = b"id,customer_id,product_id,unit_price,start_date\rL1,c1,p1,10,2024-01-01\r\
                        L2,c2,p1,20,2024-02-01\rL3,c2,p1,x,2024-02-01\r";
    let files = [("subscriptions.csv", subs)];
    let problems = read_book_from(&InMemory(&files), &ImportOptions::default(), &NoProgress)
        .err()
        .map(|e| problems_of(&e));
    assert_eq!(
        problems,
        Some(vec![
            "subscriptions.csv:4: unit_price: x: not a decimal number (like 1234.56)".to_string()
        ])
    );
    let good = &subs[..subs.len() - b"L3,c2,p1,x,2024-02-01\r".len()];
    let files = [("subscriptions.csv", good)];
    let book = read_book_from(&InMemory(&files), &ImportOptions::default(), &NoProgress).unwrap();
    assert_eq!(book.lines.len(), 2);
    let rows = rows_of(&files, &SUBSCRIPTIONS);
    assert_eq!(
        rows.iter().map(|r| r.line).collect::<Vec<_>>(),
        [2, 3],
        "the store's reader numbers lines alike"
    );
    agree(&[("subscriptions.csv", subs.to_vec())], TextEncoding::UTF_8).unwrap();
}

/// A header is read whole, however wide (here 20,000 attribute columns, 370 KB, past the
/// 256 KiB the reader reads at a time), and its names the same way on every path.
#[test]
fn a_wide_header_is_read_whole() {
    let mut customers = b"id,name".to_vec();
    let mut row = b"c1,Padaria".to_vec();
    for k in 0..20_000 {
        customers.extend_from_slice(format!(",attribute number {k:05}").as_bytes());
        row.extend_from_slice(format!(",v{k}").as_bytes());
    }
    assert!(customers.len() > 256 << 10);
    customers.extend_from_slice(b"\r\n");
    customers.extend_from_slice(&row);
    customers.extend_from_slice(b"\r\n");
    let subs = b"id,customer_id,product_id,unit_price,start_date\nL1,c1,p1,10,2024-01-01\n";
    let files = [
        ("subscriptions.csv", &subs[..]),
        ("customers.csv", &customers[..]),
    ];
    let book = read_book_from(&InMemory(&files), &ImportOptions::default(), &NoProgress)
        .unwrap_or_else(|e| panic!("{:?}", problems_of(&e)));
    let attributes = &book.customers.attributes;
    assert_eq!(attributes.len(), 20_000);
    assert_eq!(attributes[19_999].0, "attribute number 19999");
    assert_eq!(attributes[19_999].1.get(0), "v19999");
    let rows = rows_of(&files, &CUSTOMERS);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].line, 2);
    assert_eq!(rows[0].extra.len(), 20_000);
    agree(
        &[
            ("subscriptions.csv", subs.to_vec()),
            ("customers.csv", customers),
        ],
        TextEncoding::UTF_8,
    )
    .unwrap();
}

/// An extra column named twice once trimmed and in lower case (`City` and `city `) is refused
/// as the schema's columns are: the row would keep one of the two values and lose the other.
#[test]
fn an_extra_column_named_twice_is_refused() {
    let customers: &[u8] = b"id,name,City,city \nc1,Ana,Recife,Natal\n";
    let subs: &[u8] = b"id,customer_id,product_id,unit_price,start_date\nL1,c1,p1,10,2024-01-01\n";
    let files = [("subscriptions.csv", subs), ("customers.csv", customers)];
    let errors = read_book_from(&InMemory(&files), &ImportOptions::default(), &NoProgress)
        .err()
        .expect("refused");
    let problems = problems_of(&errors);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("customers.csv:1: header: city: column appears twice")),
        "{problems:?}"
    );
    agree(
        &[
            ("subscriptions.csv", subs.to_vec()),
            ("customers.csv", customers.to_vec()),
        ],
        TextEncoding::UTF_8,
    )
    .unwrap();
}

/// Header names are decoded and trimmed one way: the import and the store see the same
/// columns (a no-break space is part of a name, a Windows-1252 name is the same name).
#[test]
fn header_names_are_decoded_one_way() {
    let customers: &[u8] = b"id,name,canal\xa0,regi\xe3o\nc1,Ana,web,sul\n";
    let subs: &[u8] = b"id,customer_id,product_id,unit_price,start_date\nL1,c1,p1,10,2024-01-01\n";
    let files = [("subscriptions.csv", subs), ("customers.csv", customers)];
    let options = ImportOptions {
        encoding: TextEncoding::WINDOWS_1252,
        ..ImportOptions::default()
    };
    let book = read_book_from(&InMemory(&files), &options, &NoProgress).unwrap();
    let names: Vec<&str> = book
        .customers
        .attributes
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(names, ["canal\u{a0}", "região"]);
    let rows = read_rows_in(&InMemory(&files), &CUSTOMERS, TextEncoding::WINDOWS_1252)
        .unwrap()
        .unwrap();
    let extra: Vec<&str> = rows[0].extra.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(extra, names);
    agree(
        &[
            ("subscriptions.csv", subs.to_vec()),
            ("customers.csv", customers.to_vec()),
        ],
        TextEncoding::WINDOWS_1252,
    )
    .unwrap();
}
