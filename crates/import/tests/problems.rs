//! What the import reports, and what it does not: every check on every row in one pass,
//! never a problem that only follows from another, one problem per file that is not UTF-8,
//! and the supersession of revised lines (rule R1).

use expansa_import::{
    read_book_from, read_rows_in, schema, ImportOptions, InMemory, NoProgress, TextEncoding,
};
use expansa_ledger::{Book, Currency};

fn read(files: &[(&str, &[u8])], options: &ImportOptions) -> Result<Book, Vec<String>> {
    read_book_from(&InMemory(files), options, &NoProgress)
        .map_err(|e| e.0.iter().map(|p| p.to_string()).collect())
}

fn book(files: &[(&str, &[u8])]) -> Book {
    read(files, &ImportOptions::default()).unwrap_or_else(|p| panic!("{p:#?}"))
}

fn problems(files: &[(&str, &[u8])]) -> Vec<String> {
    problems_with(files, &ImportOptions::default())
}

fn problems_with(files: &[(&str, &[u8])], options: &ImportOptions) -> Vec<String> {
    match read(files, options) {
        Ok(_) => panic!("the book loaded"),
        Err(p) => p,
    }
}

fn end_of(book: &Book, id: &str) -> Option<String> {
    let i = book.lines.ids.find(id).unwrap();
    book.lines.items[i as usize].end.map(|d| d.to_string())
}

const SUBS: &str = "id,customer_id,product_id,unit_price,start_date,end_date,revises\n";

fn subs(rows: &str) -> Vec<u8> {
    format!("{SUBS}{rows}").into_bytes()
}

#[test]
fn a_revising_line_supersedes_its_predecessor_from_its_start() {
    let s = subs(
        "a,c1,basic,100,2024-01-01,2024-03-31,\n\
         b,c1,pro,150,2024-03-31,,a\n\
         e,c1,basic,100,2024-01-01,,\n\
         f,c1,pro,120,2024-06-15,,e\n\
         g,c1,pro,130,2024-05-10,,e\n\
         h,c1,basic,100,2024-01-01,2024-02-10,\n\
         i,c1,pro,100,2024-03-01,,h\n\
         j,c1,basic,100,2024-07-01,,\n\
         k,c1,pro,100,2024-07-01,,j\n",
    );
    let b = book(&[("subscriptions.csv", &s)]);
    assert_eq!(
        end_of(&b, "a").as_deref(),
        Some("2024-03-30"),
        "the day before b"
    );
    assert_eq!(end_of(&b, "b"), None);
    assert_eq!(
        end_of(&b, "e").as_deref(),
        Some("2024-05-09"),
        "an evergreen line ends before its earliest successor"
    );
    assert_eq!(
        end_of(&b, "h").as_deref(),
        Some("2024-02-10"),
        "an earlier end is kept"
    );
    assert_eq!(
        end_of(&b, "j").as_deref(),
        Some("2024-06-30"),
        "revised on its own start day: never active"
    );
    let j = &b.lines.items[b.lines.ids.find("j").unwrap() as usize];
    assert_eq!(j.snapshot_months(), None);
    let k = &b.lines.items[b.lines.ids.find("k").unwrap() as usize];
    assert_eq!(k.revises(), b.lines.ids.find("j"));
}

#[test]
fn revising_a_later_line_and_cycles_are_refused() {
    let s = subs(
        "s7,c1,pro,150,2024-05-01,,\n\
         a,c1,basic,100,2024-03-01,,s7\n\
         x,c1,p,1,2024-01-01,,y\n\
         y,c1,p,1,2024-01-01,,x\n\
         p,c1,p,1,2024-01-01,,r\n\
         q,c1,p,1,2024-01-01,,p\n\
         r,c1,p,1,2024-01-01,,q\n\
         t,c1,p,1,2024-01-01,,p\n",
    );
    assert_eq!(
        problems(&[("subscriptions.csv", &s)]),
        [
            "subscriptions.csv:3: revises: s7: revises s7, which starts 2024-05-01, after this line",
            "subscriptions.csv:4: revises: y: a revises cycle: x -> y -> x",
            "subscriptions.csv:6: revises: r: a revises cycle: p -> r -> q -> p",
        ]
    );
}

#[test]
fn a_cycle_through_a_refused_row_without_a_start_is_found() {
    let s = subs(
        "a,c1,p,1,2024-02-01,,b\n\
         b,c1,p,1,someday,,c\n\
         c,c1,p,1,2024-03-01,,a\n",
    );
    assert_eq!(
        problems(&[("subscriptions.csv", &s)]),
        [
            "subscriptions.csv:2: revises: b: a revises cycle: a -> b -> c -> a",
            "subscriptions.csv:3: start_date: someday: not a date (expected YYYY-MM-DD, a real day)",
        ]
    );
}

#[test]
fn every_check_runs_on_a_row_with_other_problems() {
    let s = subs(
        "a,c1,p,10,2024-01-01,,\n\
         b,c1,p,abc,2024-02-01,,nope\n\
         c,c1,p,-1,2024-02-01,,c\n\
         d,c2,p,10,2024-02-01,2024-01-01,a\n\
         e,c1,p,x,2023-01-01,,a\n\
         f,c1,p,10,2024-03-01,,b\n",
    );
    assert_eq!(
        problems(&[("subscriptions.csv", &s)]),
        [
            "subscriptions.csv:3: revises: nope: names an unknown line",
            "subscriptions.csv:3: unit_price: abc: not a decimal number (like 1234.56)",
            "subscriptions.csv:4: revises: c: a line cannot revise itself",
            "subscriptions.csv:4: unit_price: -1: must not be negative",
            "subscriptions.csv:5: end_date: 2024-01-01: is before the start (2024-02-01)",
            "subscriptions.csv:5: revises: a: names a line of another customer (c1)",
            "subscriptions.csv:6: revises: a: revises a, which starts 2024-01-01, after this line",
            "subscriptions.csv:6: unit_price: x: not a decimal number (like 1234.56)",
        ],
        "f revises b, a refused row: nothing to say about f"
    );
}

#[test]
fn end_before_start_and_a_missing_rate_are_both_reported() {
    let s = b"id,customer_id,product_id,unit_price,currency,start_date,end_date\n\
              a,c1,p,10,BRL,2024-01-01,\n\
              b,c1,p,10,EUR,2024-03-01,2024-02-01\n";
    let found = problems(&[("subscriptions.csv", s)]);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with("subscriptions.csv:3: currency: EUR: no rate"));
    assert!(found[1].starts_with("subscriptions.csv:3: end_date: 2024-02-01"));
}

#[test]
fn a_refused_row_keeps_its_id_for_every_table_that_names_it() {
    let files: [(&str, &[u8]); 7] = [
        (
            "customers.csv",
            b"id,registered_on\nc1,2024-02-30\nc2,\nc2,\n",
        ),
        ("products.csv", b"id,tier\npro,high\npro,2\n"),
        (
            "subscriptions.csv",
            b"id,customer_id,contract_id,product_id,unit_price,start_date,revises\n\
              a,c1,k1,pro,10,2024-01-01,\n\
              b,c1,k2,pro,zero,2024-01-01,\n\
              c,c1,k2,pro,10,2024-02-01,b\n\
              d,c2,k1,pro,bad,2024-01-01,\n",
        ),
        (
            "contracts.csv",
            b"id,customer_id,start_date\nk1,c1,2024-13-01\nk1,c1,2024-01-01\nk2,ghost,never\n",
        ),
        (
            "contracted_prices.csv",
            b"customer_id,product_id,price,discount_pct\nghost,pro,,\nc1,pro,10,\n",
        ),
        (
            "usage.csv",
            b"customer_id,product_id,month,used,included\nghost,pro,2024-1,1,1\n",
        ),
        (
            "offers.csv",
            b"id,customer_id,product_id,kind,offered_on,line_id\n\
              o1,ghost,pro,upgrade,2024-01-01,b\n\
              o1,c1,pro,upsell,2024-01-01,b\n\
              o2,c1,pro,upsell,2024-01-01,zz\n",
        ),
    ];
    assert_eq!(
        problems(&files),
        [
            "subscriptions.csv:3: unit_price: zero: not a decimal number (like 1234.56)",
            "subscriptions.csv:5: contract_id: k1: contract belongs to another customer (c1)",
            "subscriptions.csv:5: unit_price: bad: not a decimal number (like 1234.56)",
            "customers.csv:2: registered_on: 2024-02-30: not a date (expected YYYY-MM-DD, a real day)",
            "customers.csv:4: id: c2: duplicate customer id (first on line 3)",
            "products.csv:2: tier: high: not a whole number",
            "products.csv:3: id: pro: duplicate product id",
            "contracts.csv:2: start_date: 2024-13-01: not a date (expected YYYY-MM-DD, a real day)",
            "contracts.csv:3: id: k1: duplicate contract id (first on line 2)",
            "contracts.csv:4: customer_id: ghost: unknown customer (not in customers.csv)",
            "contracts.csv:4: start_date: never: not a date (expected YYYY-MM-DD, a real day)",
            "contracted_prices.csv:2: customer_id: ghost: unknown customer (not in customers.csv)",
            "contracted_prices.csv:2: price: : give price or discount_pct",
            "usage.csv:2: customer_id: ghost: unknown customer (not in customers.csv)",
            "usage.csv:2: month: 2024-1: not a month (expected YYYY-MM)",
            "offers.csv:2: customer_id: ghost: unknown customer (not in customers.csv)",
            "offers.csv:2: kind: upgrade: must be upsell or cross_sell",
            "offers.csv:3: id: o1: duplicate offer id (first on line 2)",
            "offers.csv:4: line_id: zz: names an unknown line",
        ]
    );
}

/// A file whose rows cannot be read (its header refused) is its problem alone: the tables
/// naming its rows (lines of customers it would list, offers of its lines, lines needing its
/// rates) are not reported as naming unknown ones.
#[test]
fn a_file_whose_rows_are_not_read_is_not_followed_by_its_consequences() {
    let customers: &[u8] = b"id,name\nc1,One\nc2,Two\n";
    let subscriptions: &[u8] = b"id,customer_id,product_id,unit_price,start_date,currency\n\
        a,c1,pro,10,2024-01-01,USD\n\
        b,c2,pro,10,2024-01-01,BRL\n";
    let rates: &[u8] = b"month,currency,rate\n2024-01,USD,5\n";
    let offers: &[u8] = b"id,customer_id,product_id,kind,offered_on,line_id\n\
        o1,c1,pro,upsell,2024-01-01,a\n";
    let book = |refused: &str, header: &'static [u8]| {
        let mut files: Vec<(&str, &[u8])> = vec![
            ("customers.csv", customers),
            ("subscriptions.csv", subscriptions),
            ("fx_rates.csv", rates),
            ("offers.csv", offers),
        ];
        let at = files.iter().position(|(f, _)| *f == refused).unwrap();
        files[at].1 = header;
        problems(&files)
    };
    assert_eq!(
        book("customers.csv", b"name\nOne\nTwo\n"),
        ["customers.csv:1: id: : required column is missing from the header"]
    );
    assert_eq!(
        book(
            "subscriptions.csv",
            b"customer_id,product_id,unit_price,start_date\nc1,pro,1,2024-01-01\n"
        ),
        ["subscriptions.csv:1: id: : required column is missing from the header"]
    );
    assert_eq!(
        book("fx_rates.csv", b"month,currency\n2024-01,USD\n"),
        ["fx_rates.csv:1: rate: : required column is missing from the header"]
    );
    // The same files, read, give those problems (what the test would miss otherwise).
    let read_but_empty = problems(&[
        ("customers.csv", b"id\n"),
        ("subscriptions.csv", subscriptions),
        ("fx_rates.csv", b"month,currency,rate\n"),
        ("offers.csv", offers),
    ]);
    assert_eq!(
        read_but_empty,
        [
            "subscriptions.csv:2: currency: USD: no rate in fx_rates.csv for USD to BRL in any \
             month (1 line): add USD rates",
            "subscriptions.csv:2: customer_id: c1: unknown customer (not in customers.csv)",
            "subscriptions.csv:3: customer_id: c2: unknown customer (not in customers.csv)",
            "offers.csv:2: customer_id: c1: unknown customer (not in customers.csv)",
        ]
    );
}

#[test]
fn a_file_in_windows_1252_is_one_problem_and_reads_with_the_encoding() {
    let customers: &[u8] = b"id;name;city\nc1;Padaria;Rio\nc2;Jos\xe9 & Filhos;S\xe3o Paulo\nc3;A\xe7\xfacar;Bel\xe9m\n";
    let subs: &[u8] = b"id,customer_id,product_id,unit_price,start_date\na,c2,p,10,2024-01-01\nb,c3,p,10,2024-01-01\n";
    let files = [("customers.csv", customers), ("subscriptions.csv", subs)];
    assert_eq!(
        problems(&files),
        [
            "customers.csv:3: name: José & Filhos: the file is not UTF-8; it looks like \
          Windows-1252 (Latin-1), as Excel saves CSV in Brazil: pass --encoding windows-1252, \
          or save it as CSV UTF-8"
        ],
        "one problem for the file, none for the lines of its customers"
    );
    for name in ["windows-1252", "latin1", "ISO-8859-1", "cp1252"] {
        let options = ImportOptions {
            encoding: TextEncoding::from_name(name).unwrap(),
            ..ImportOptions::default()
        };
        let b = read(&files, &options).unwrap_or_else(|p| panic!("{p:#?}"));
        let c2 = b.customers.ids.find("c2").unwrap() as usize;
        assert_eq!(b.customers.name.get_opt(c2), Some("José & Filhos"));
        let city = b.customers.attribute("city").unwrap();
        assert_eq!(city.get_opt(c2), Some("São Paulo"));
    }
    assert_eq!(TextEncoding::from_name("utf8"), Some(TextEncoding::UTF_8));
    assert_eq!(TextEncoding::from_name("shift_jis"), None);
    assert_eq!(TextEncoding::from_name("klingon"), None);
}

#[test]
fn utf8_files_stay_utf8_with_the_windows_1252_encoding() {
    // A book mixing a file saved as UTF-8 and one saved by Excel in Windows-1252.
    let customers: &[u8] = "id,name\nc1,São João\n".as_bytes();
    let subs: &[u8] = b"id,customer_id,product_id,unit_price,start_date,note\na,c1,p,10,2024-01-01,\"promo\xe7\xe3o\"\n";
    let options = ImportOptions {
        encoding: TextEncoding::WINDOWS_1252,
        ..ImportOptions::default()
    };
    let b = read(
        &[("customers.csv", customers), ("subscriptions.csv", subs)],
        &options,
    )
    .unwrap();
    assert_eq!(b.customers.name.get_opt(0), Some("São João"));
}

#[test]
fn encoding_problems_name_the_first_bad_byte_once_per_file() {
    // Quoted fields, a header in Windows-1252 and bad bytes in many chunks far apart.
    let mut subs = b"id,customer_id,product_id,unit_price,start_date,descri\xe7\xe3o\n".to_vec();
    for i in 0..40_000 {
        let note: &[u8] = if i % 1000 == 7 {
            b"\"a\xe7\xfacar\""
        } else {
            b"plain"
        };
        subs.extend_from_slice(format!("l{i},c{},p,10,2024-01-01,", i % 50).as_bytes());
        subs.extend_from_slice(note);
        subs.push(b'\n');
    }
    assert_eq!(
        problems(&[("subscriptions.csv", &subs)]),
        [
            "subscriptions.csv:1: header: descrição: the file is not UTF-8; it looks like \
          Windows-1252 (Latin-1), as Excel saves CSV in Brazil: pass --encoding windows-1252, \
          or save it as CSV UTF-8"
        ]
    );
    let options = ImportOptions {
        encoding: TextEncoding::WINDOWS_1252,
        ..ImportOptions::default()
    };
    assert_eq!(
        read(&[("subscriptions.csv", &subs)], &options)
            .unwrap()
            .lines
            .len(),
        40_000
    );

    let subs = b"id,customer_id,product_id,unit_price,start_date\na,c1,p,10,2024-01-01\nb,c1\x01\x81,p,10,2024-01-01\n";
    assert_eq!(
        problems(&[("subscriptions.csv", subs)]),
        [
            // Control characters are shown escaped: a problem stays on one line.
            "subscriptions.csv:3: customer_id: c1\\u{1}\\u{81}: the file is not UTF-8 (nor \
          plain Windows-1252 text): save it as CSV UTF-8"
        ]
    );
    let utf16 = b"\xff\xfei\x00d\x00\n\x00";
    assert_eq!(
        problems(&[("subscriptions.csv", utf16)]),
        ["subscriptions.csv:1: header: : the file is UTF-16, not UTF-8: save it as CSV UTF-8"]
    );
}

#[test]
fn rows_of_separators_and_trailing_empty_columns_are_no_values() {
    let s = b"id;customer_id;product_id;unit_price;start_date\n\
              ;;;;\n\
              a;c1;p;10;2024-01-01;;;\n\
              \x20; ;;\t;\n\
              b;c1;p;10;2024-01-01\n\
              ;;;;;;;\n\
              \"\";\"\";;;\n";
    let b = book(&[("subscriptions.csv", s)]);
    assert_eq!(b.lines.len(), 2);

    let files: [(&str, &[u8]); 2] = [
        ("customers.csv", b"id,name\nc1,Um,extra\nc2\n,,\n"),
        (
            "subscriptions.csv",
            b"id,customer_id,product_id,unit_price,start_date\n\
              a,c1,p,10,2024-01-01\n\
              b,c2,p,10,2024-01-01\n\
              c,c1,p,1,234.50,2024-01-01\n\
              d,c1,p,10,2024-01-01,c\n",
        ),
    ];
    assert_eq!(
        problems(&files),
        [
            "subscriptions.csv:4: row: 6: has 6 fields where the header has 5",
            "subscriptions.csv:5: row: 6: has 6 fields where the header has 5",
            "customers.csv:2: row: 3: has 3 fields where the header has 2",
            "customers.csv:3: row: 1: has 1 fields where the header has 2",
        ],
        "a row of the wrong shape is reported once, and its id is still known"
    );
}

#[test]
fn a_rate_for_the_reporting_currency_must_be_1() {
    let files: [(&str, &[u8]); 2] = [
        (
            "fx_rates.csv",
            b"month,currency,rate\n2024-01,BRL,1\n2024-01,USD,5.10\n2024-02,USD,x\n2024-02,USD,5\n",
        ),
        (
            "subscriptions.csv",
            b"id,customer_id,product_id,unit_price,currency,start_date\n\
              a,c1,p,10,USD,2024-01-01\n\
              b,c1,p,10,BRL,2024-02-01\n",
        ),
    ];
    let usd = ImportOptions {
        currency: Currency::from_code("USD").unwrap(),
        ..ImportOptions::default()
    };
    assert_eq!(
        problems_with(&files, &usd),
        [
            "subscriptions.csv:3: currency: BRL: no rate in fx_rates.csv for BRL to USD in 2024-02",
            "fx_rates.csv:3: rate: 5.10: a rate for the reporting currency USD must be 1: these \
             rates look relative to another currency (give that one with --currency)",
            "fx_rates.csv:4: rate: x: not a decimal number (like 1234.56)",
            "fx_rates.csv:5: month: 2024-02: second rate for USD in this month",
            "fx_rates.csv:5: rate: 5: a rate for the reporting currency USD must be 1: these \
             rates look relative to another currency (give that one with --currency)",
        ]
    );
}

#[test]
fn missing_rates_are_said_once_per_currency() {
    let all_usd: &[u8] = b"id,customer_id,product_id,unit_price,currency,start_date\n\
              a,c1,p,10,USD,2024-01-01\n\
              b,c2,p,10,usd,2024-02-01\n\
              c,c3,p,10,USD,2024-03-01\n";
    assert_eq!(
        problems(&[("subscriptions.csv", all_usd)]),
        [
            "subscriptions.csv:2: currency: USD: every line is in USD but the reporting currency \
          is BRL (the default) and fx_rates.csv has no USD rate: pass --currency USD, or add \
          USD rates"
        ]
    );
    let usd = ImportOptions {
        currency: Currency::from_code("USD").unwrap(),
        ..ImportOptions::default()
    };
    assert_eq!(book_with(all_usd, &usd).lines.len(), 3);

    let mixed: &[u8] = b"id,customer_id,product_id,unit_price,currency,start_date\n\
              a,c1,p,10,,2024-01-01\n\
              b,c2,p,10,EUR,2024-02-01\n\
              c,c3,p,10,EUR,2024-03-01\n\
              d,c3,p,10,USD,2024-03-01\n\
              e,c3,p,10,USD,2024-04-01\n\
              f,c3,p,10,GBP,2024-04-01\n";
    let fx: &[u8] = b"month,currency,rate\n2024-03,USD,5\n2024-05,GBP,x\n";
    assert_eq!(
        problems(&[("subscriptions.csv", mixed), ("fx_rates.csv", fx)]),
        [
            "subscriptions.csv:3: currency: EUR: no rate in fx_rates.csv for EUR to BRL in any \
             month (2 lines, the first here): add EUR rates",
            "subscriptions.csv:6: currency: USD: no rate in fx_rates.csv for USD to BRL in 2024-04",
            "subscriptions.csv:7: currency: GBP: no rate in fx_rates.csv for GBP to BRL in 2024-04",
            "fx_rates.csv:3: rate: x: not a decimal number (like 1234.56)",
        ]
    );
}

fn book_with(subs: &[u8], options: &ImportOptions) -> Book {
    read(&[("subscriptions.csv", subs)], options).unwrap_or_else(|p| panic!("{p:#?}"))
}

#[test]
fn rows_read_back_in_the_encoding() {
    let files: [(&str, &[u8]); 1] = [("customers.csv", b"id;name\nc1;S\xe3o\n;;\n")];
    let rows = read_rows_in(
        &InMemory(&files),
        &schema::CUSTOMERS,
        TextEncoding::WINDOWS_1252,
    )
    .unwrap()
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].values[1].as_deref(), Some("São"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
    /// Books of random pieces (separators, quotes, line ends, bytes that are not UTF-8, ids that
    /// revise each other): the import never panics, and a refused book names its problems.
    #[test]
    fn never_panics_and_always_explains(
        pieces in proptest::collection::vec(proptest::sample::select(vec![
            &b","[..], b";", b"\"", b"\n", b"\r\n", b" ", b"\xe9", b"\x81", b"\xff\xfe", b"\x00",
            b"a", b"b", b"c1", b"c2", b"10", b"1,5", b"-1", b"2024-01-01", b"2024-02-01",
            b"2023-12-31", b"USD", b"BRL",
        ]), 0..120),
        header in proptest::sample::select(vec![
            &b"id,customer_id,product_id,unit_price,start_date,end_date,revises,currency\n"[..],
            b"id;customer_id;product_id;unit_price;start_date;revises\n",
            b"id,customer_id\n",
        ]),
        encoding in proptest::sample::select(vec![TextEncoding::UTF_8, TextEncoding::WINDOWS_1252]),
    ) {
        let mut subs = header.to_vec();
        for p in &pieces {
            subs.extend_from_slice(p);
        }
        let customers: &[u8] = b"id,registered_on\nc1,2024-13-01\n";
        let fx: &[u8] = b"month,currency,rate\n2024-01,USD,x\n";
        let files = [("subscriptions.csv", &subs[..]), ("customers.csv", customers), ("fx_rates.csv", fx)];
        let options = ImportOptions { encoding, ..ImportOptions::default() };
        if let Err(problems) = read(&files, &options) {
            proptest::prop_assert!(!problems.is_empty());
        }
    }
}
